"""Selectors of the audit trail for the browser, the API and the exports: filtered searches and
an event's proof of inclusion in the newest checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit import merkle, notes, tree
from audit.models import AuditEvent, Checkpoint

PAGE_SIZE = 50
FILTERS = ("kind", "agent", "workflow", "session", "system", "actor", "outcome", "action", "q")


def parse_when(value: str, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parse_datetime(value)
        if parsed is None and (day := parse_date(value)) is not None:
            parsed = (
                datetime(day.year, day.month, day.day, 23, 59, 59) if end else datetime(day.year, day.month, day.day)
            )
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError(f"{value!r} is not a date or date-time (use 2026-11-01 or 2026-11-01T08:00)")
    try:
        return timezone.make_aware(parsed, UTC) if timezone.is_naive(parsed) else parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(f"{value!r} is out of range") from None


def filtered(params: Any) -> tuple[QuerySet[AuditEvent], dict[str, str], list[str]]:
    """Sequenced events matching the browser's filters (the API's too). Every filter on one
    column's value uses an index that leads with that column (decision 0022); `agent`, `q` and
    a `kind` prefix are scans bounded by the page. Events still waiting for the sequencer are left out:
    they have no place in the log yet, and keyset pages run on seq."""
    values = {key: (params.get(key) or "").strip() for key in (*FILTERS, "since", "until")}
    errors: list[str] = []
    events = AuditEvent.objects.filter(seq__isnull=False)
    for key in FILTERS:
        value = values[key]
        if not value:
            continue
        if key == "agent":
            # Everything the agent did, whoever the actor was: every session event names its
            # agent in its details (a reviewer's approval, the gateway's execution).
            events = events.filter(Q(actor=f"agent:{value}") | Q(details__agent=value))
        elif key == "kind" and value.endswith("*"):
            events = events.filter(kind__startswith=value.rstrip("*"))  # action.* is every action event
        elif key == "q":
            # Free text over the details (a customer id, a ticket): a scan, bounded by the page.
            events = events.annotate(details_text=Cast("details", TextField())).filter(details_text__icontains=value)
        else:
            events = events.filter(**{key: value})
    for key, lookup in (("since", "at__gte"), ("until", "at__lte")):
        try:
            when = parse_when(values[key], end=key == "until")
        except ValueError as exc:
            errors.append(f"{key}: {exc}")
            continue
        if when is not None:
            events = events.filter(**{lookup: when})
    return events, values, errors


def inclusion(seq: int) -> dict[str, Any]:
    """Whether the event at `seq` is proved included in the newest checkpoint, checked here
    exactly as an outside verifier would: signature, then the path from its leaf to the root."""
    event = AuditEvent.objects.filter(seq=seq).values("seq", "hash").first()
    checkpoint = Checkpoint.objects.order_by("-tree_size").first()
    if event is None:
        return {"state": "absent"}
    if checkpoint is None or checkpoint.tree_size < seq:
        return {"state": "pending"}
    try:
        body = notes.open_checkpoint(checkpoint.note, notes.verifier(), notes.origin())
        proof = tree.inclusion_proof(seq, body.size)
    except (notes.NoteError, tree.TreeDataMissing) as exc:
        return {"state": "broken", "reason": str(exc), "checkpoint": checkpoint}
    holds = merkle.verify_inclusion(seq - 1, body.size, bytes.fromhex(event["hash"]), proof, body.root)
    return {
        "state": "included" if holds else "broken",
        "reason": "" if holds else "its inclusion proof does not lead to the checkpoint's root",
        "checkpoint": checkpoint,
        "proof": [p.hex() for p in proof],
    }
