"""Appending events, and the bytes each event contributes to the Merkle tree.

`record()` inserts one row in the caller's transaction, with `hash` = the RFC 6962 leaf hash
of the event's canonical JSON. It takes no lock: concurrent writers only insert. The
sequencer (audit.sequencer) later gives each committed event its `seq` and integrates it
into the tree (decision 0009).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from prometheus_client import Histogram

from audit.canonical import chain_json, db_stable
from audit.models import AuditEvent
from audit.redaction import never_persist_keys, scrub

# The event's fields in its leaf, in this order of columns (the JSON itself sorts keys).
LEAF_FIELDS = (
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
# What the HMAC chain hashed, for events written before the Merkle log.
HASHED_FIELDS = ("seq", *LEAF_FIELDS)


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


def entry_bytes(fields: dict[str, Any], legacy: tuple[int, str, str] | None = None) -> bytes:
    """The leaf's entry: canonical JSON of the event's fields (`at` as ISO text).

    An event from the HMAC chain also carries its old seq, prev_hash and HMAC, so the tree
    commits to the chain it came from.
    """
    if legacy is not None:
        fields = {**fields, "legacy": {"seq": legacy[0], "prev_hash": legacy[1], "hmac": legacy[2]}}
    return chain_json(fields)


def leaf_hex(fields: dict[str, Any], legacy: tuple[int, str, str] | None = None) -> str:
    return hashlib.sha256(b"\x00" + entry_bytes(fields, legacy)).hexdigest()


@lru_cache(maxsize=4)
def _keyed(key: str) -> hmac.HMAC:
    return hmac.new(key.encode(), digestmod=hashlib.sha256)


def compute_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """The HMAC of an event of the old chain (verification of legacy events only)."""
    mac = _keyed(settings.WARDEN_AUDIT_KEY).copy()  # copying skips re-deriving the key pads
    mac.update(prev_hash.encode())
    mac.update(chain_json(fields))
    return mac.hexdigest()


APPEND_SECONDS = Histogram(
    "warden_audit_append_seconds",
    "Time to append one audit event",
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)
_EVENT_TABLE = AuditEvent._meta.db_table
_COLUMNS = (*LEAF_FIELDS, "hash")
_INSERT = (
    f"INSERT INTO {_EVENT_TABLE} ({', '.join(_COLUMNS)}, legacy_prev_hash, legacy_hmac) "
    f"VALUES ({', '.join(['%s'] * len(_COLUMNS))}, '', '') RETURNING id"
)
_AT = AuditEvent._meta.get_field("at")
_DETAILS = AuditEvent._meta.get_field("details")


def record(kind: str, actor: Any, **fields: Any) -> AuditEvent:
    """Append one event in the caller's transaction. Raises (and so rolls back the caller)
    if it cannot be written. The returned event has its id and hash; `seq` comes later."""
    event, values = prepare(kind, actor, **fields)
    started = time.perf_counter()
    if connection.get_autocommit() and not connection.in_atomic_block:
        # On its own, one INSERT is its own transaction: no BEGIN/COMMIT round trip.
        with connection.cursor() as cursor:
            cursor.execute(_INSERT, values)
            event.pk = cursor.fetchone()[0]
    else:
        # No savepoint: inside the caller's transaction a failed append must fail the whole
        # transaction anyway, and a savepoint would cost two more round trips.
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            cursor.execute(_INSERT, values)
            event.pk = cursor.fetchone()[0]
    APPEND_SECONDS.observe(time.perf_counter() - started)
    event._state.adding = False
    return event


def insert_from(source: str) -> str:
    """The event's INSERT as the last part of a statement whose CTE `source` yields one row when
    the change it audits was made, and none when it was not (then no event is written). With
    prepare()'s values, a state change and its event are one statement: one round trip, and in
    autocommit one durable transaction (decision 0015)."""
    return (
        f"INSERT INTO {_EVENT_TABLE} ({', '.join(_COLUMNS)}, legacy_prev_hash, legacy_hmac) "
        f"SELECT {', '.join(['%s'] * len(_COLUMNS))}, '', '' FROM {source} RETURNING id"
    )


def prepare(
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
) -> tuple[AuditEvent, list[Any]]:
    """The event (unsaved, with its hash) and the values of its INSERT, in column order."""
    if not kind or not isinstance(kind, str):
        raise ValueError("audit event kind must be a non-empty string")
    keys = never_persist_keys() | {k.lower() for k in sensitive_keys} if details else frozenset()
    clean_details = db_stable(scrub(details, keys) if keys else details or {})
    event = AuditEvent(
        at=timezone.now(),
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
    fields = {name: getattr(event, name) for name in LEAF_FIELDS}
    fields["at"] = _iso(event.at)
    event.hash = leaf_hex(fields)  # also refuses details that cannot be hashed, before any SQL
    values = [getattr(event, name) for name in _COLUMNS]
    values[0] = _AT.get_db_prep_value(event.at, connection)
    values[_COLUMNS.index("details")] = _DETAILS.get_db_prep_value(clean_details, connection)
    return event, values


def verify(**kwargs: Any) -> Any:
    """The whole log against its checkpoints: see audit.verify.verify."""
    from audit.verify import verify as _verify

    return _verify(**kwargs)
