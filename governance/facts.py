"""Session facts: what Warden itself knows about a session, for conditions to read.

decide() takes the facts as an argument and stays pure. The gateway keeps them on the
AgentSession row (`facts`, with the existing `data_sensitivity`) and writes them in the same
statement that claims an allowed call, so deciding with facts costs no extra round trip.

    sensitivity    the highest class of data the session has handled
    data_objects   the data objects its allowed calls have read or written
    counts         action -> allowed calls so far
    sums           action -> parameter -> sum of that top-level numeric parameter so far

`None` in place of the facts means "not known": every condition on a fact holds, and a
destination is judged as if the session had handled the most sensitive data. Unknown facts
raise tiers; they never lower them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# governance.models.Sensitivity, in order; kept here so deciding imports no models.
SENSITIVITIES = ("public", "internal", "confidential", "restricted")


def sensitivity_rank(name: Any) -> int:
    """0 for public up to 3 for restricted; an unknown class ranks highest (fail closed)."""
    return SENSITIVITIES.index(name) if name in SENSITIVITIES else len(SENSITIVITIES) - 1


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class SessionFacts:
    sensitivity: str = "public"
    data_objects: frozenset[str] = frozenset()
    counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    sums: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_json(cls, stored: Any, sensitivity: str = "public") -> SessionFacts:
        """The facts as kept on the session row. A row that cannot be read yields None-like
        strictness through the caller (see agents.gateway); here, unreadable parts are dropped."""
        stored = stored if isinstance(stored, dict) else {}
        counts = stored.get("counts") if isinstance(stored.get("counts"), dict) else {}
        sums = stored.get("sums") if isinstance(stored.get("sums"), dict) else {}
        objects = stored.get("data_objects") if isinstance(stored.get("data_objects"), list) else []
        return cls(
            sensitivity=sensitivity,
            data_objects=frozenset(o for o in objects if isinstance(o, str)),
            counts=MappingProxyType({a: n for a, n in counts.items() if isinstance(n, int)}),
            sums=MappingProxyType({a: MappingProxyType(dict(s)) for a, s in sums.items() if isinstance(s, dict)}),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "data_objects": sorted(self.data_objects),
            "counts": dict(sorted(self.counts.items())),
            "sums": {a: dict(sorted(s.items())) for a, s in sorted(self.sums.items())},
        }

    def after(self, action: str, params: Any, data_objects: tuple[str, ...] = (), sensitivity: int = 0) -> SessionFacts:
        """The facts once this call has been allowed."""
        sums = dict(self.sums.get(action, {}))
        if isinstance(params, dict):
            for key, value in params.items():
                number = _number(value)
                if number is not None:
                    sums[key] = sums.get(key, 0.0) + number
        level = max(sensitivity_rank(self.sensitivity), sensitivity)
        return SessionFacts(
            sensitivity=SENSITIVITIES[min(level, len(SENSITIVITIES) - 1)],
            data_objects=self.data_objects | frozenset(data_objects),
            counts=MappingProxyType({**self.counts, action: self.counts.get(action, 0) + 1}),
            sums=MappingProxyType({**self.sums, action: MappingProxyType(sums)}),
        )
