"""Session scopes, as the runtime knows them. The rules live in governance.scopes, so that a
policy file's scope template is checked by the same code that enforces it; these names stay
importable from here."""

from __future__ import annotations

from typing import Any

from governance.scopes import (
    MAX_CONSTRAINTS,
    NEGATION,
    Scope,
    ScopeInvalid,
    bind,
    check_template,
    compile_scope,
    merge,
    session_scope,
)


def actions_of(snapshot: Any) -> frozenset[str]:
    return frozenset(snapshot.tiers)


__all__ = [
    "MAX_CONSTRAINTS",
    "NEGATION",
    "Scope",
    "ScopeInvalid",
    "actions_of",
    "bind",
    "check_template",
    "compile_scope",
    "merge",
    "session_scope",
]
