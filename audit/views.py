"""The audit browser: search, a session's timeline, verification with progress, exports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.http import require_GET, require_POST

from audit import merkle, notes, tree
from audit.chain import label
from audit.export import iter_csv, iter_jsonl
from audit.models import AuditEvent, Checkpoint, VerificationRun

PAGE_SIZE = 50
# The audit app sits below governance, so it names the roles' groups itself (governance.roles.Role).
AUDIT_ROLES = ("compliance", "security")
FILTERS = ("kind", "agent", "workflow", "session", "system", "actor", "outcome", "action", "q")


def _require_auditor(request: HttpRequest) -> None:
    user = request.user
    if not (user.is_authenticated and user.is_active and user.groups.filter(name__in=AUDIT_ROLES).exists()):
        raise PermissionDenied


def _when(value: str, *, end: bool = False) -> datetime | None:
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
    """Sequenced events matching the browser's filters (the API's too). Every filter uses an
    index that leads with its column. Events still waiting for the sequencer are left out:
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
            when = _when(values[key], end=key == "until")
        except ValueError as exc:
            errors.append(f"{key}: {exc}")
            continue
        if when is not None:
            events = events.filter(**{lookup: when})
    return events, values, errors


@login_required
@require_GET
def browse(request: HttpRequest) -> HttpResponse:
    """Keyset pagination by seq: the next page is `before=<last seq>`, fast at any depth."""
    _require_auditor(request)
    events, values, errors = filtered(request.GET)
    before = request.GET.get("before", "")
    if before.isdigit():
        events = events.filter(seq__lt=int(before))
    page = list(events.order_by("-seq")[: PAGE_SIZE + 1]) if not errors else []
    query = "&".join(f"{k}={v}" for k, v in values.items() if v)
    return render(
        request,
        "audit/browse.html",
        {
            "events": page[:PAGE_SIZE],
            "next_before": page[PAGE_SIZE - 1].seq if len(page) > PAGE_SIZE else None,
            "values": values,
            "errors": errors,
            "query": query,
            "first_page": not before,
            "runs": VerificationRun.objects.order_by("-started_at")[:1],
            "pending": AuditEvent.objects.filter(seq__isnull=True).count(),
            "checkpoint": Checkpoint.objects.order_by("-tree_size").values("tree_size", "signed_at").first(),
        },
    )


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


@login_required
@require_GET
def event_detail(request: HttpRequest, seq: int) -> HttpResponse:
    _require_auditor(request)
    event = get_object_or_404(AuditEvent, seq=seq)
    return render(request, "audit/event.html", {"event": event, "inclusion": inclusion(seq)})


@login_required
@require_GET
def session_timeline(request: HttpRequest, session: str) -> HttpResponse:
    _require_auditor(request)
    events = list(AuditEvent.objects.filter(session=session, seq__isnull=False).order_by("seq")[:2000])
    rows = [(event, json.dumps(event.details, indent=2, sort_keys=True, ensure_ascii=False)) for event in events]
    return render(request, "audit/timeline.html", {"session": session, "events": events, "rows": rows})


@login_required
@require_POST
def verify_start(request: HttpRequest) -> HttpResponse:
    from audit.tasks import verify_chain

    _require_auditor(request)
    run = VerificationRun.objects.create(started_by=label(request.user), total=AuditEvent.objects.count())
    verify_chain.delay(run.pk)
    return redirect("audit:verify_status", pk=run.pk)


@login_required
@require_GET
def verify_status(request: HttpRequest, pk: int) -> HttpResponse:
    _require_auditor(request)
    run = get_object_or_404(VerificationRun, pk=pk)
    template = "audit/_verify_progress.html" if request.headers.get("HX-Request") else "audit/verify.html"
    return render(request, template, {"run": run})


@login_required
@require_GET
def export(request: HttpRequest, fmt: str) -> HttpResponse | StreamingHttpResponse:
    """Streamed, so memory stays flat however many events match."""
    _require_auditor(request)
    events, _, errors = filtered(request.GET)
    if errors:
        return HttpResponse("\n".join(errors), status=400, content_type="text/plain")
    if fmt == "jsonl":
        response = StreamingHttpResponse(iter_jsonl(queryset=events), content_type="application/x-ndjson")
    else:
        response = StreamingHttpResponse(iter_csv(queryset=events), content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="warden-audit-{stamp}.{fmt}"'
    return response
