"""Session scopes: whoever starts a session may narrow what it can do, never widen it.

A scope names a subset of the workflow's actions and, per action, constraints on the
parameters that must all hold:

    actions: [crm.get_customer, crm.issue_refund]
    constraints:
      crm.issue_refund:
        - {param: customer_id, op: eq, value: C-1002}
        - {param: amount, op: lte, value: 100}

A call outside the scope is refused (`action.out_of_scope`), after the workflow's own decision:
a scope only ever removes what the workflow would allow. This is how an instruction injected
into a tool result is stopped from steering a session to another payee, ticket or recipient.

A constraint is checked as its negation with the condition engine of the policy
(governance.conditions), whose rule is that a missing value or a value of another type counts
as holding: so a call whose parameter cannot be shown to meet the constraint is outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from governance.conditions import Condition, compile_condition

# Each operator a constraint may use, with the one that states its violation.
NEGATION = {
    "eq": "ne",
    "ne": "eq",
    "in": "not_in",
    "not_in": "in",
    "gt": "lte",
    "gte": "lt",
    "lt": "gte",
    "lte": "gt",
    "domain_in": "domain_not_in",
    "domain_not_in": "domain_in",
}
MAX_CONSTRAINTS = 50


class ScopeInvalid(ValueError):
    """The scope cannot be used; the message names the place in it."""


@dataclass(frozen=True)
class Scope:
    raw: dict[str, Any]
    actions: frozenset[str] | None  # None: every action of the workflow
    violations: dict[str, tuple[tuple[str, Condition], ...]]  # action -> (description, negated condition)

    def problem(self, action: str, params: Any) -> str | None:
        """Why this call is outside the scope, or None."""
        if self.actions is not None and action not in self.actions:
            return f"{action} is not one of the session's actions ({', '.join(sorted(self.actions))})"
        for described, violation in self.violations.get(action, ()):
            if violation.holds(params):
                return f"{action} must have {described}"
        return None


def compile_scope(raw: Any, *, workflow_actions: frozenset[str] | set[str]) -> Scope | None:
    """Validate a scope against the workflow's actions. None (or {}) means no narrowing."""
    if raw in (None, {}):
        return None
    if not isinstance(raw, dict):
        raise ScopeInvalid("scope: must be a mapping with 'actions' and/or 'constraints'")
    unknown = set(raw) - {"actions", "constraints"}
    if unknown:
        raise ScopeInvalid(f"scope: unknown keys {sorted(unknown)} (use actions and constraints)")
    actions: frozenset[str] | None = None
    if "actions" in raw:
        listed = raw["actions"]
        if not isinstance(listed, list) or not listed or not all(isinstance(a, str) for a in listed):
            raise ScopeInvalid("scope.actions: must be a non-empty list of action names")
        outside = sorted(set(listed) - set(workflow_actions))
        if outside:
            raise ScopeInvalid(f"scope.actions: not actions of this workflow: {', '.join(outside)}")
        actions = frozenset(listed)
    constraints = raw.get("constraints", {})
    if not isinstance(constraints, dict):
        raise ScopeInvalid("scope.constraints: must map action names to lists of constraints")
    violations: dict[str, tuple[tuple[str, Condition], ...]] = {}
    count = 0
    for action, specs in constraints.items():
        where = f"scope.constraints.{action}"
        if action not in workflow_actions or (actions is not None and action not in actions):
            raise ScopeInvalid(f"{where}: not an action of this session")
        if not isinstance(specs, list):
            raise ScopeInvalid(f"{where}: must be a list of constraints")
        compiled = []
        for i, spec in enumerate(specs):
            count += 1
            if count > MAX_CONSTRAINTS:
                raise ScopeInvalid(f"scope.constraints: at most {MAX_CONSTRAINTS} constraints")
            if not isinstance(spec, dict) or set(spec) - {"param", "op", "value"}:
                raise ScopeInvalid(f"{where}[{i}]: a constraint is {{param, op, value}}")
            op = spec.get("op")
            if op not in NEGATION:
                raise ScopeInvalid(f"{where}[{i}].op: use one of {', '.join(NEGATION)}")
            if not isinstance(spec.get("param"), str) or not spec["param"]:
                raise ScopeInvalid(f"{where}[{i}].param: name a parameter")
            try:
                violation = compile_condition(
                    {"param": spec["param"], "op": NEGATION[op], "value": spec.get("value"), "tier": 4}, {}
                )
            except ValueError as exc:
                raise ScopeInvalid(f"{where}[{i}]: {exc}") from None
            compiled.append((f"{spec['param']} {op} {spec.get('value')!r}", violation))
        violations[action] = tuple(compiled)
    return Scope(raw=raw, actions=actions, violations=violations)


def actions_of(snapshot: Any) -> frozenset[str]:
    return frozenset(snapshot.tiers)
