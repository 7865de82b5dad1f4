"""Conditions that combine: `all`, `any` and `not` blocks, nested to any depth the limits allow.

    - {all: [{param: amount, op: gt, value: 100}, {not: {param: payee, op: in, list: known_payees}}], tier: 3}

Only the outermost condition has a tier. Truth is three-valued (see leaf.py): `all` is false
when one part is false, `any` is true when one part is true, `not` swaps true and false, and
in every other case the block is unknown, and an unknown condition holds. So `not` never turns
"cannot be judged" into "does not hold".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from governance.conditions.leaf import Condition, Truth, compile_leaf
from governance.facts import SessionFacts

BLOCKS = ("all", "any", "not")
MAX_DEPTH = 8
MAX_PARTS = 100


@dataclass(frozen=True)
class Block:
    kind: str  # all, any or not
    parts: tuple[Block | Condition, ...]
    tier: int

    @property
    def op(self) -> str:
        return self.kind

    def describe(self) -> str:
        if self.kind == "not":
            return f"not ({self.parts[0].describe()})"
        return f"{self.kind} of ({'; '.join(p.describe() for p in self.parts)})"

    def holds(self, params: Any, facts: SessionFacts | None = None) -> bool:
        return self.truth(params, facts) is not False

    def truth(self, params: Any, facts: SessionFacts | None = None) -> Truth:
        if self.kind == "not":
            inner = self.parts[0].truth(params, facts)
            return None if inner is None else not inner
        decisive = self.kind == "any"  # the value one part decides the block with
        result: Truth = not decisive
        for part in self.parts:
            t = part.truth(params, facts)
            if t is decisive:
                return decisive
            if t is None:
                result = None
        return result


Node = Block | Condition


class _Budget:
    def __init__(self) -> None:
        self.parts = 0

    def take(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise ValueError(f"a condition may have at most {MAX_PARTS} parts")


def compile_condition(spec: Any, lists: dict[str, list[Any]], *, action: str = "") -> Node:
    """Build a condition from its policy form: a comparison or a block, with a tier from 1 to 4.
    Raises ValueError with a readable message. `action` is the action whose tier it raises."""
    if not isinstance(spec, dict):
        raise ValueError("a condition must be a mapping")
    tier = spec.get("tier")
    if not isinstance(tier, int) or isinstance(tier, bool) or not 1 <= tier <= 4:
        raise ValueError("a condition's 'tier' must be an integer from 1 to 4")
    return _node(spec, lists, tier=tier, action=action, depth=0, budget=_Budget(), where="")


def _node(
    spec: Any, lists: dict[str, list[Any]], *, tier: int, action: str, depth: int, budget: _Budget, where: str
) -> Node:
    budget.take()
    if not isinstance(spec, dict):
        raise ValueError(f"{where}a condition must be a mapping")
    if depth and "tier" in spec:
        raise ValueError(f"{where}only the outermost condition has a 'tier'")
    kinds = [k for k in BLOCKS if k in spec]
    if not kinds:
        try:
            return compile_leaf({k: v for k, v in spec.items() if k != "tier"}, lists, tier=tier, action=action)
        except ValueError as exc:
            raise ValueError(f"{where}{exc}") from None
    if len(kinds) > 1 or set(spec) - {kinds[0], "tier"}:
        raise ValueError(f"{where}a block is one of {{all: [...]}}, {{any: [...]}} or {{not: {{...}}}}, alone")
    kind = kinds[0]
    if depth >= MAX_DEPTH:
        raise ValueError(f"{where}blocks nest at most {MAX_DEPTH} deep")
    body = spec[kind]
    if kind == "not":
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        parts: tuple[Node, ...] = (
            _node(body, lists, tier=tier, action=action, depth=depth + 1, budget=budget, where=f"{where}not: "),
        )
    else:
        if not isinstance(body, list) or not body:
            raise ValueError(f"{where}'{kind}' needs a non-empty list of conditions")
        parts = tuple(
            _node(p, lists, tier=tier, action=action, depth=depth + 1, budget=budget, where=f"{where}{kind}[{i}]: ")
            for i, p in enumerate(body)
        )
    return Block(kind=kind, parts=parts, tier=tier)


def unreadable_condition(spec: Any, problem: str) -> Condition:
    """A stored condition that no longer compiles (say, a pattern RE2 refuses): it always holds,
    at its own tier if that can be read and at tier 4 otherwise. Fail closed, never open."""
    tier = spec.get("tier") if isinstance(spec, dict) else None
    if not isinstance(tier, int) or isinstance(tier, bool) or not 1 <= tier <= 4:
        tier = 4
    param = spec.get("param") if isinstance(spec, dict) else None
    return Condition(param=str(param or "?"), op=f"unreadable ({problem})", tier=tier)


def leaves(node: Node) -> list[Condition]:
    """Every comparison in a condition, in order."""
    if isinstance(node, Condition):
        return [node]
    return [leaf for part in node.parts for leaf in leaves(part)]
