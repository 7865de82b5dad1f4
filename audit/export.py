"""Streaming exports of the trail for a SIEM or an auditor. Memory stays flat: rows are read
in keyset chunks (with proofs, the tree's leaf hashes are held too: 32 bytes an event)."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from audit import merkle
from audit.chain import LEAF_FIELDS, _iso
from audit.models import AuditEvent, Checkpoint
from audit.ocsf import to_ocsf

# What an export shows of each event: its place in the log, the fields its leaf hashes, its leaf hash.
EXPORT_FIELDS = ("seq", *LEAF_FIELDS, "hash")
_READ_FIELDS = ("id", *EXPORT_FIELDS, "legacy_prev_hash", "legacy_hmac")
# OWASP CSV injection: a spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def iter_events(
    *,
    since: datetime | None = None,
    chunk_size: int = 2000,
    queryset: QuerySet[AuditEvent] | None = None,
    up_to_seq: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Events in seq order, then those not yet sequenced (seq None) unless `up_to_seq` is given."""
    base = AuditEvent.objects.all() if queryset is None else queryset
    if since is not None:
        base = base.filter(at__gte=since)
    sequenced = base.filter(seq__isnull=False)
    if up_to_seq is not None:
        sequenced = sequenced.filter(seq__lte=up_to_seq)
    last = 0
    while rows := list(sequenced.filter(seq__gt=last).order_by("seq").values(*_READ_FIELDS)[:chunk_size]):
        yield from rows
        last = rows[-1]["seq"]
    if up_to_seq is not None:
        return
    last = 0
    pending = base.filter(seq__isnull=True)
    while rows := list(pending.filter(id__gt=last).order_by("id").values(*_READ_FIELDS)[:chunk_size]):
        yield from rows
        last = rows[-1]["id"]


def leaf_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The fields an event's leaf hashes, exactly (see audit.chain.entry_bytes)."""
    fields = {name: row[name] for name in LEAF_FIELDS}
    if isinstance(fields["at"], datetime):
        fields["at"] = _iso(fields["at"])
    return fields


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row[k] for k in EXPORT_FIELDS}
    out["at"] = row["at"].isoformat()
    return out


class _Proofs:
    """Inclusion proofs for every event of one checkpoint, from the leaves held in memory."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        hashes = AuditEvent.objects.filter(seq__lte=checkpoint.tree_size).order_by("seq").values_list("hash", flat=True)
        levels = [[bytes.fromhex(h) for h in hashes.iterator(chunk_size=10000)]]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append([merkle.node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
        self.levels = levels

    def range_hash(self, a: int, b: int) -> bytes:
        return merkle.fold([self.levels[level][index] for level, index in merkle.full_pieces(a, b)])

    def for_event(self, row: dict[str, Any]) -> dict[str, Any]:
        size = self.checkpoint.tree_size
        proof = merkle.inclusion_proof(row["seq"] - 1, size, self.range_hash)
        legacy = (
            {"seq": row["seq"], "prev_hash": row["legacy_prev_hash"], "hmac": row["legacy_hmac"]}
            if row["legacy_hmac"]
            else None
        )
        return {
            "leaf_index": row["seq"] - 1,
            "tree_size": size,
            "entry": leaf_fields(row) | ({"legacy": legacy} if legacy else {}),
            "inclusion_proof": [base64.b64encode(p).decode() for p in proof],
            "checkpoint": self.checkpoint.note,
        }


def newest_checkpoint(size: int | None = None) -> Checkpoint | None:
    checkpoints = Checkpoint.objects.all()
    return (checkpoints.filter(tree_size=size) if size else checkpoints.order_by("-tree_size")).first()


def iter_jsonl(
    *,
    since: datetime | None = None,
    queryset: QuerySet[AuditEvent] | None = None,
    proofs: Checkpoint | None = None,
) -> Iterator[str]:
    """OCSF-shaped JSON lines (see audit.ocsf). With `proofs`, only the events in that
    checkpoint, each carrying `unmapped.proof`: its leaf entry, inclusion proof and the
    signed checkpoint, enough to verify it with the public key alone."""
    prover = _Proofs(proofs) if proofs is not None else None
    events = iter_events(since=since, queryset=queryset, up_to_seq=proofs.tree_size if proofs else None)
    for row in events:
        event = to_ocsf(_public(row))
        if prover is not None:
            event["unmapped"]["proof"] = prover.for_event(row)
        yield json.dumps(event, sort_keys=True, ensure_ascii=False) + "\n"


def safe_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: a leading formula character gets a quote before it."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class SafeCsvWriter:
    """csv.writer whose every cell passes safe_cell: the one CSV writer of Warden's exports
    (the audit trail, campaign reports), so no export can carry a formula into a spreadsheet."""

    def __init__(self, stream: Any) -> None:
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell("" if value is None else value) for value in row])


def iter_csv(*, since: datetime | None = None, queryset: QuerySet[AuditEvent] | None = None) -> Iterator[str]:
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(EXPORT_FIELDS)
    yield flush()
    for row in iter_events(since=since, queryset=queryset):
        out = _public(row)
        out["details"] = json.dumps(out["details"], sort_keys=True, ensure_ascii=False)
        writer.writerow(out[f] for f in EXPORT_FIELDS)
        yield flush()
