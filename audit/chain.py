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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from audit.canonical import chain_json, db_stable
from audit.models import GENESIS_HASH, AuditEvent, ChainHead
from audit.redaction import never_persist_keys, scrub

HASHED_FIELDS = (
    "seq", "at", "kind", "actor", "session", "workflow", "system",
    "data_type", "action", "tier", "outcome", "details",
)  # fmt: skip
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
    return at.astimezone(dt_timezone.utc).isoformat(timespec="microseconds")


def compute_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    key = settings.WARDEN_AUDIT_KEY.encode()
    return hmac.new(key, prev_hash.encode() + chain_json(fields), hashlib.sha256).hexdigest()


def _lock_head() -> ChainHead:
    head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    # The row is created by a migration; it is only absent after a table flush (tests).
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first() or (0, GENESIS_HASH)
    try:
        with transaction.atomic():
            ChainHead.objects.create(pk=1, seq=last[0], hash=last[1])
    except IntegrityError:
        pass  # another writer created it first
    return ChainHead.objects.select_for_update().get(pk=1)


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
    """Append one event. Raises (and so rolls back the caller) if it cannot be written."""
    if not kind or not isinstance(kind, str):
        raise ValueError("audit event kind must be a non-empty string")
    keys = never_persist_keys() | {k.lower() for k in sensitive_keys}
    clean_details = db_stable(scrub(details or {}, keys) if keys else details or {})
    values = {
        "session": label(session), "workflow": label(workflow), "system": label(system),
        "data_type": data_type or "", "action": label(action), "outcome": outcome or "",
    }  # fmt: skip
    with transaction.atomic():
        head = _lock_head()
        at = timezone.now()
        fields = {
            "seq": head.seq + 1,
            "at": _iso(at),
            "kind": kind,
            "actor": label(actor),
            "tier": tier,
            "details": clean_details,
            **values,
        }
        digest = compute_hash(head.hash, fields)
        event = AuditEvent.objects.create(
            seq=fields["seq"], at=at, kind=kind, actor=fields["actor"], tier=tier,
            details=clean_details, prev_hash=head.hash, hash=digest, **values,
        )  # fmt: skip
        ChainHead.objects.filter(pk=1).update(seq=event.seq, hash=digest)
    return event


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    last_seq: int
    first_bad_seq: int | None = None
    problem: str = ""  # altered | missing | reordered | head
    message: str = ""


def _fields_of(row: tuple[Any, ...]) -> dict[str, Any]:
    fields = dict(zip(HASHED_FIELDS, row))
    fields["at"] = _iso(fields["at"])
    return fields


def verify(*, chunk_size: int = 5000, progress: Callable[[int, int], None] | None = None) -> VerifyResult:
    """Recompute the whole chain in seq order and stop at the first break.

    `progress(done, total)` is called after each chunk, for progress bars.
    """
    total = AuditEvent.objects.count()
    columns = (*HASHED_FIELDS, "prev_hash", "hash")
    prev_hash, expected, count, last_seq = GENESIS_HASH, 1, 0, 0
    while True:
        try:
            rows = list(
                AuditEvent.objects.filter(seq__gt=last_seq).order_by("seq").values_list(*columns)[:chunk_size]
            )
        except (ValueError, TypeError, DatabaseError) as exc:
            return _unreadable(count, last_seq, exc)
        if not rows:
            break
        for row in rows:
            seq, stored_prev, stored_hash = row[0], row[-2], row[-1]
            if seq != expected:
                return VerifyResult(
                    False, count, last_seq, expected, "missing",
                    f"missing: events {expected}..{seq - 1} are absent (the next event present is seq {seq})",
                )  # fmt: skip
            try:
                intact = compute_hash(stored_prev, _fields_of(row[:-2])) == stored_hash
            except (ValueError, TypeError, AttributeError) as exc:
                return VerifyResult(False, count, last_seq, seq, "altered", f"altered: seq {seq} is malformed ({exc})")
            if not intact:
                return _diagnose(seq, stored_prev, count, last_seq)
            if stored_prev != prev_hash:
                return VerifyResult(
                    False, count, last_seq, seq, "altered",
                    f"altered: prev_hash of seq {seq} does not match the hash of seq {seq - 1}",
                )  # fmt: skip
            prev_hash, expected, last_seq = stored_hash, seq + 1, seq
            count += 1
        if progress:
            progress(count, total)
    return _check_head(count, last_seq, prev_hash)


def _unreadable(count: int, last_seq: int, exc: Exception) -> VerifyResult:
    # Which row of the chunk is unreadable is unknown; the first one that could be is named.
    return VerifyResult(
        False, count, last_seq, last_seq + 1, "altered",
        f"altered: events after seq {last_seq} cannot be read ({type(exc).__name__}: {exc})",
    )  # fmt: skip


def _diagnose(seq: int, stored_prev: str, count: int, last_seq: int) -> VerifyResult:
    # An event whose predecessor now sits at another seq was moved, not edited.
    predecessor = AuditEvent.objects.filter(hash=stored_prev).values_list("seq", flat=True).first()
    if stored_prev != GENESIS_HASH and predecessor is not None and predecessor != seq - 1:
        return VerifyResult(
            False, count, last_seq, seq, "reordered",
            f"reordered: the event at seq {seq} was chained after the event now at seq {predecessor}",
        )  # fmt: skip
    return VerifyResult(
        False, count, last_seq, seq, "altered",
        f"altered: the contents of seq {seq} do not match its hash",
    )  # fmt: skip


def _check_head(count: int, last_seq: int, last_hash: str) -> VerifyResult:
    head = ChainHead.objects.filter(pk=1).values_list("seq", "hash").first()
    if head is None:
        if count == 0:
            return VerifyResult(True, 0, 0)
        return VerifyResult(False, count, last_seq, last_seq, "head", "head: the chain head record is missing")
    head_seq, head_hash = head
    if head_seq > last_seq:
        return VerifyResult(
            False, count, last_seq, last_seq + 1, "missing",
            f"missing: events {last_seq + 1}..{head_seq} are absent (the chain head records seq {head_seq})",
        )  # fmt: skip
    if head_seq < last_seq or head_hash != last_hash:
        return VerifyResult(
            False, count, last_seq, min(head_seq + 1, last_seq), "head",
            f"head: the chain head (seq {head_seq}) does not match the last event (seq {last_seq})",
        )  # fmt: skip
    return VerifyResult(True, count, last_seq)
