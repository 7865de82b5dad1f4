"""The audit log. `audit.record(...)` is the one way to append an event; the sequencer
(`manage.py audit_sequencer`, or `audit.sequence_now()` in-process) puts events in the tree."""

from __future__ import annotations

from typing import Any


def record(kind: str, actor: Any, **fields: Any) -> Any:
    """Append one AuditEvent inside the caller's transaction (see audit.chain.record)."""
    from audit.chain import record as _record

    return _record(kind, actor, **fields)


def sequence_now() -> int:
    """Sequence and sign everything committed so far, synchronously (see audit.sequencer)."""
    from audit.sequencer import sequence_now as _sequence_now

    return _sequence_now()
