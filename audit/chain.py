"""Appending to and verifying the hash chain.

hash = HMAC-SHA256(WARDEN_AUDIT_KEY, prev_hash + canonical JSON of the event's fields).
Appends lock the ChainHead row inside the caller's transaction, so the event commits or
rolls back together with the state change it describes, and concurrent writers queue
instead of forking the chain. Keep the surrounding transactions short: never call a
connector, the model or the network while holding the head.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from prometheus_client import Histogram

from audit.canonical import chain_json, db_stable
from audit.models import GENESIS_HASH, AuditEvent, ChainHead
from audit.redaction import never_persist_keys, scrub

HASHED_FIELDS = (
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
)
_TEXT_FIELDS = ("session", "workflow", "system", "data_type", "action", "outcome")


def label(value: Any) -> str:
    """How a related object is named in the trail: its `audit_label`, else str()."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    explicit = getattr(value, "audit_label", None)
    if explicit is not None:
        return str(explicit)
    username = getattr(value, "get_username", None)
    if callable(username):
        return f"user:{username()}"
    return str(getattr(value, "pk", value))


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


@lru_cache(maxsize=4)
def _keyed(key: str) -> hmac.HMAC:
    return hmac.new(key.encode(), digestmod=hashlib.sha256)


def compute_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    mac = _keyed(settings.WARDEN_AUDIT_KEY).copy()  # copying skips re-deriving the key pads
    mac.update(prev_hash.encode())
    mac.update(chain_json(fields))
    return mac.hexdigest()


def _lock_head(cursor: Any) -> tuple[int, str]:
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    cursor.execute(f"SELECT seq, hash FROM {_HEAD_TABLE} WHERE id = 1{lock}")
    row = cursor.fetchone()
    if row is not None:
        return row[0], row[1]
    # The row is created by a migration; it is only absent after a table flush (tests).
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first() or (0, GENESIS_HASH)
    try:
        with transaction.atomic():
            ChainHead.objects.create(pk=1, seq=last[0], hash=last[1])
    except IntegrityError:
        pass  # another writer created it first
    cursor.execute(f"SELECT seq, hash FROM {_HEAD_TABLE} WHERE id = 1{lock}")
    row = cursor.fetchone()
    return row[0], row[1]


APPEND_SECONDS = Histogram(
    "warden_audit_append_seconds",
    "Time to append one audit event",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)
_HEAD_TABLE = ChainHead._meta.db_table
_EVENT_TABLE = AuditEvent._meta.db_table
_COLUMNS = (*HASHED_FIELDS, "prev_hash", "hash")
_INSERT = f"INSERT INTO {_EVENT_TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_COLUMNS))})"


def record(
    kind: str,
    actor: Any,
    *,
    session: Any = "",
    workflow: Any = "",
    system: Any = "",
    data_type: str = "",
    action: Any = "",
    tier: int | None = None,
    outcome: str = "",
    details: dict[str, Any] | None = None,
    sensitive_keys: Iterable[str] = (),
) -> AuditEvent:
    """Append one event. Raises (and so rolls back the caller) if it cannot be written.

    Plain SQL inside the lock: the head is held until commit, so the less work between
    locking it and committing, the more appends per second the whole system makes.
    """
    if not kind or not isinstance(kind, str):
        raise ValueError("audit event kind must be a non-empty string")
    keys = never_persist_keys() | {k.lower() for k in sensitive_keys} if details else frozenset()
    clean_details = db_stable(scrub(details, keys) if keys else details or {})
    event = AuditEvent(
        kind=kind,
        actor=label(actor),
        session=label(session),
        workflow=label(workflow),
        system=label(system),
        data_type=data_type or "",
        action=label(action),
        tier=tier,
        outcome=outcome or "",
        details=clean_details,
    )
    details_field = AuditEvent._meta.get_field("details")
    at_field = AuditEvent._meta.get_field("at")
    chain_json(clean_details)  # refuse unhashable details before taking the lock
    started = time.perf_counter()
    # No savepoint: inside the caller's transaction a failed append must fail the whole
    # transaction anyway, and a savepoint would cost two more round trips under the lock.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        head_seq, head_hash = _lock_head(cursor)
        event.seq, event.at, event.prev_hash = head_seq + 1, timezone.now(), head_hash
        fields = {name: getattr(event, name) for name in HASHED_FIELDS}
        fields["at"] = _iso(event.at)
        event.hash = compute_hash(head_hash, fields)
        values = [getattr(event, name) for name in _COLUMNS]
        values[_COLUMNS.index("at")] = at_field.get_db_prep_value(event.at, connection)
        values[_COLUMNS.index("details")] = details_field.get_db_prep_value(clean_details, connection)
        cursor.execute(_INSERT, values)
        cursor.execute(f"UPDATE {_HEAD_TABLE} SET seq = %s, hash = %s WHERE id = 1", [event.seq, event.hash])
    APPEND_SECONDS.observe(time.perf_counter() - started)
    event._state.adding = False
    return event


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    last_seq: int
    first_bad_seq: int | None = None
    problem: str = ""  # altered | missing | reordered | head
    message: str = ""


def _read_chunk(after_seq: int, limit: int) -> list[tuple[Any, ...]]:
    """Rows after `after_seq` as (seq, *hashed fields, prev_hash, hash), with `at` already in
    the hashed text form. Raw SQL, because verification reads every event and the ORM's
    per-row work would halve its speed."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    at_sql = (
        "at"
        if connection.vendor != "postgresql"
        else ("to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')")
    )
    columns = ", ".join(at_sql if c == "at" else c for c in (*HASHED_FIELDS, "prev_hash", "hash"))
    with connection.cursor() as cursor:
        # A bounded range keeps the planner on the primary key even when statistics are stale.
        cursor.execute(
            f"SELECT {columns} FROM {table} WHERE seq > %s AND seq <= %s ORDER BY seq", [after_seq, after_seq + limit]
        )
        rows = cursor.fetchall()
        if not rows:  # past the end, or a gap wider than one chunk
            cursor.execute(f"SELECT {columns} FROM {table} WHERE seq > %s ORDER BY seq LIMIT %s", [after_seq, limit])
            rows = cursor.fetchall()
        return rows


def _stored_at(value: Any) -> str:
    if isinstance(value, datetime):
        return _iso(value)
    text = str(value)
    if connection.vendor == "sqlite":  # Django keeps naive UTC text: 'YYYY-MM-DD HH:MM:SS[.ffffff]'
        text = text.replace(" ", "T", 1)
        if len(text) == 19:
            text += ".000000"
        text += "+00:00"
    return text


def _fields_of(row: tuple[Any, ...]) -> dict[str, Any]:
    fields = dict(zip(HASHED_FIELDS, row))
    fields["at"] = _stored_at(fields["at"])
    if isinstance(fields["details"], str):
        try:
            fields["details"] = json.loads(fields["details"])
        except ValueError:
            pass  # unparseable details cannot match the hash, which reports the seq
    return fields


def verify(*, chunk_size: int = 1000, progress: Callable[[int, int], None] | None = None) -> VerifyResult:
    """Recompute the whole chain in seq order and stop at the first break.

    `progress(done, total)` is called after each chunk, for progress bars.
    """
    total = AuditEvent.objects.count()
    prev_hash, expected, count, last_seq = GENESIS_HASH, 1, 0, 0
    while True:
        try:
            rows = _read_chunk(last_seq, chunk_size)
        except (ValueError, TypeError, DatabaseError) as exc:
            return _unreadable(count, last_seq, exc)
        if not rows:
            break
        for row in rows:
            seq, stored_prev, stored_hash = row[0], row[-2], row[-1]
            if seq != expected:
                return VerifyResult(
                    False,
                    count,
                    last_seq,
                    expected,
                    "missing",
                    f"missing: events {expected}..{seq - 1} are absent (the next event present is seq {seq})",
                )
            try:
                intact = compute_hash(stored_prev, _fields_of(row[:-2])) == stored_hash
            except (ValueError, TypeError, AttributeError) as exc:
                return VerifyResult(False, count, last_seq, seq, "altered", f"altered: seq {seq} is malformed ({exc})")
            if not intact:
                return _diagnose(seq, stored_prev, count, last_seq)
            if stored_prev != prev_hash:
                return VerifyResult(
                    False,
                    count,
                    last_seq,
                    seq,
                    "altered",
                    f"altered: prev_hash of seq {seq} does not match the hash of seq {seq - 1}",
                )
            prev_hash, expected, last_seq = stored_hash, seq + 1, seq
            count += 1
        if progress:
            progress(count, total)
    return _check_head(count, last_seq, prev_hash)


def _unreadable(count: int, last_seq: int, exc: Exception) -> VerifyResult:
    # Which row of the chunk is unreadable is unknown; the first one that could be is named.
    return VerifyResult(
        False,
        count,
        last_seq,
        last_seq + 1,
        "altered",
        f"altered: events after seq {last_seq} cannot be read ({type(exc).__name__}: {exc})",
    )


def _diagnose(seq: int, stored_prev: str, count: int, last_seq: int) -> VerifyResult:
    # An event whose predecessor now sits at another seq was moved, not edited.
    predecessor = AuditEvent.objects.filter(hash=stored_prev).values_list("seq", flat=True).first()
    if stored_prev != GENESIS_HASH and predecessor is not None and predecessor != seq - 1:
        return VerifyResult(
            False,
            count,
            last_seq,
            seq,
            "reordered",
            f"reordered: the event at seq {seq} was chained after the event now at seq {predecessor}",
        )
    return VerifyResult(
        False,
        count,
        last_seq,
        seq,
        "altered",
        f"altered: the contents of seq {seq} do not match its hash",
    )


def _check_head(count: int, last_seq: int, last_hash: str) -> VerifyResult:
    head = ChainHead.objects.filter(pk=1).values_list("seq", "hash").first()
    if head is None:
        if count == 0:
            return VerifyResult(True, 0, 0)
        return VerifyResult(False, count, last_seq, last_seq, "head", "head: the chain head record is missing")
    head_seq, head_hash = head
    if head_seq > last_seq:
        return VerifyResult(
            False,
            count,
            last_seq,
            last_seq + 1,
            "missing",
            f"missing: events {last_seq + 1}..{head_seq} are absent (the chain head records seq {head_seq})",
        )
    if head_seq < last_seq or head_hash != last_hash:
        return VerifyResult(
            False,
            count,
            last_seq,
            min(head_seq + 1, last_seq),
            "head",
            f"head: the chain head (seq {head_seq}) does not match the last event (seq {last_seq})",
        )
    return VerifyResult(True, count, last_seq)
