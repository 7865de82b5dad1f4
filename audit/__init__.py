"""The hash-chained audit trail. `audit.record(...)` is the one way to append an event."""

from __future__ import annotations

from typing import Any


def record(kind: str, actor: Any, **fields: Any) -> Any:
    """Append one AuditEvent inside the caller's transaction (see audit.chain.record)."""
    from audit.chain import record as _record

    return _record(kind, actor, **fields)
