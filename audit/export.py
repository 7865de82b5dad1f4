"""Streaming exports of the trail for a SIEM. Memory stays flat: rows are read in keyset chunks."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from audit.models import AuditEvent
from audit.ocsf import to_ocsf

EXPORT_FIELDS = (
    "seq",
    "at",
    "kind",
    "actor",
    "session",
    "workflow",
    "system",
    "data_type",
    "action",
    "tier",
    "outcome",
    "details",
    "prev_hash",
    "hash",
)


def iter_events(
    *, since: datetime | None = None, chunk_size: int = 2000, queryset: QuerySet[AuditEvent] | None = None
) -> Iterator[dict[str, Any]]:
    last_seq = 0
    base = AuditEvent.objects.all() if queryset is None else queryset
    if since is not None:
        base = base.filter(at__gte=since)
    while True:
        rows = list(base.filter(seq__gt=last_seq).order_by("seq").values(*EXPORT_FIELDS)[:chunk_size])
        if not rows:
            return
        for row in rows:
            row["at"] = row["at"].isoformat()
            yield row
        last_seq = rows[-1]["seq"]


def iter_jsonl(*, since: datetime | None = None, queryset: QuerySet[AuditEvent] | None = None) -> Iterator[str]:
    """OCSF-shaped JSON lines (see audit.ocsf)."""
    for row in iter_events(since=since, queryset=queryset):
        yield json.dumps(to_ocsf(row), sort_keys=True, ensure_ascii=False) + "\n"


def iter_csv(*, since: datetime | None = None, queryset: QuerySet[AuditEvent] | None = None) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(EXPORT_FIELDS)
    yield flush()
    for row in iter_events(since=since, queryset=queryset):
        row["details"] = json.dumps(row["details"], sort_keys=True, ensure_ascii=False)
        writer.writerow(["" if row[f] is None else row[f] for f in EXPORT_FIELDS])
        yield flush()
