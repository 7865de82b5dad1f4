"""Session scopes: whoever starts a session may narrow what it can do, never widen it.

A scope names a subset of the workflow's actions and, per action, constraints on the
parameters that must all hold:

    actions: [crm.get_customer, crm.issue_refund]
    constraints:
      crm.issue_refund:
        - {param: customer_id, op: eq, value: C-1002}
        - {param: amount, op: lte, value: 100}

A call outside the scope gets the workflow's `out_of_scope` outcome (refused, or tier 3 so a
person decides), after the workflow's own decision: a scope only ever removes what the
workflow would allow. This is how an instruction injected into a tool result is stopped from
steering a session to another payee, ticket or recipient.

A workflow may also carry a scope *template*: the same shape, where a constraint takes its
value from the session's trigger instead of the policy (`bind: ticket_id` instead of `value`):

    scope_template:
      bind:
        ticket_id: {pattern: "T-[0-9]{4}"}
      constraints:
        ticketing.add_comment:
          - {param: ticket_id, op: eq, bind: ticket_id}

A bound value comes from the trigger's data (`trigger_data` in the API, `--trigger-data` of
run_agent), which must match the pattern whole; failing that, from the one text in the
session's input that the pattern finds. No value, or two different ones, and the session is
refused: a template never silently leaves a session unscoped.

A constraint is checked as its negation with the condition engine of the policy
(governance.conditions), whose rule is that a missing value or a value of another type counts
as holding: so a call whose parameter cannot be shown to meet the constraint is outside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from governance.conditions import Node, compile_condition
from governance.regex import compile_regex, regex_problem

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
MAX_BOUND_LENGTH = 200


class ScopeInvalid(ValueError):
    """The scope cannot be used; the message names the place in it."""


@dataclass(frozen=True)
class Scope:
    raw: dict[str, Any]
    actions: frozenset[str] | None  # None: every action of the workflow
    violations: dict[str, tuple[tuple[str, Node], ...]]  # action -> (description, negated condition)

    def problem(self, action: str, params: Any) -> str | None:
        """Why this call is outside the scope, or None."""
        if self.actions is not None and action not in self.actions:
            return f"{action} is not one of the session's actions ({', '.join(sorted(self.actions))})"
        for described, violation in self.violations.get(action, ()):
            if violation.holds(params):
                return f"{action} must have {described}"
        return None


def compile_scope(raw: Any, *, workflow_actions: frozenset[str] | set[str], where: str = "scope") -> Scope | None:
    """Validate a scope against the workflow's actions. None (or {}) means no narrowing."""
    if raw in (None, {}):
        return None
    if not isinstance(raw, dict):
        raise ScopeInvalid(f"{where}: must be a mapping with 'actions' and/or 'constraints'")
    unknown = set(raw) - {"actions", "constraints"}
    if unknown:
        raise ScopeInvalid(f"{where}: unknown keys {sorted(unknown)} (use actions and constraints)")
    actions: frozenset[str] | None = None
    if "actions" in raw:
        listed = raw["actions"]
        if not isinstance(listed, list) or not listed or not all(isinstance(a, str) for a in listed):
            raise ScopeInvalid(f"{where}.actions: must be a non-empty list of action names")
        outside = sorted(set(listed) - set(workflow_actions))
        if outside:
            raise ScopeInvalid(f"{where}.actions: not actions of this workflow: {', '.join(outside)}")
        actions = frozenset(listed)
    constraints = raw.get("constraints", {})
    if not isinstance(constraints, dict):
        raise ScopeInvalid(f"{where}.constraints: must map action names to lists of constraints")
    violations: dict[str, tuple[tuple[str, Node], ...]] = {}
    count = 0
    for action, specs in constraints.items():
        at = f"{where}.constraints.{action}"
        if action not in workflow_actions or (actions is not None and action not in actions):
            raise ScopeInvalid(f"{at}: not an action of this session")
        if not isinstance(specs, list):
            raise ScopeInvalid(f"{at}: must be a list of constraints")
        compiled = []
        for i, spec in enumerate(specs):
            count += 1
            if count > MAX_CONSTRAINTS:
                raise ScopeInvalid(f"{where}.constraints: at most {MAX_CONSTRAINTS} constraints")
            if not isinstance(spec, dict) or set(spec) - {"param", "op", "value"}:
                raise ScopeInvalid(f"{at}[{i}]: a constraint is {{param, op, value}}")
            op = spec.get("op")
            if op not in NEGATION:
                raise ScopeInvalid(f"{at}[{i}].op: use one of {', '.join(NEGATION)}")
            if not isinstance(spec.get("param"), str) or not spec["param"]:
                raise ScopeInvalid(f"{at}[{i}].param: name a parameter")
            try:
                violation = compile_condition(
                    {"param": spec["param"], "op": NEGATION[op], "value": spec.get("value"), "tier": 4}, {}
                )
            except ValueError as exc:
                raise ScopeInvalid(f"{at}[{i}]: {exc}") from None
            compiled.append((f"{spec['param']} {op} {spec.get('value')!r}", violation))
        violations[action] = tuple(compiled)
    return Scope(raw=raw, actions=actions, violations=violations)


# --- templates ------------------------------------------------------------------------------


def _bindings(template: dict[str, Any], where: str) -> dict[str, str]:
    """name -> pattern of the template's bindings."""
    bind = template.get("bind", {})
    if not isinstance(bind, dict):
        raise ScopeInvalid(f"{where}.bind: must map names to {{pattern}}")
    patterns = {}
    for name, spec in bind.items():
        if not isinstance(spec, dict) or set(spec) != {"pattern"}:
            raise ScopeInvalid(f"{where}.bind.{name}: a binding is {{pattern: <RE2 expression>}}")
        problem = regex_problem(spec["pattern"])
        if problem or not spec["pattern"]:
            raise ScopeInvalid(f"{where}.bind.{name}.pattern: {problem or 'give a pattern'}")
        patterns[name] = spec["pattern"]
    return patterns


def _fill(template: dict[str, Any], values: Mapping[str, str], where: str) -> dict[str, Any]:
    """The template as a scope: every `bind: name` replaced by the bound value."""
    scope: dict[str, Any] = {k: v for k, v in template.items() if k != "bind"}
    constraints = template.get("constraints")
    if isinstance(constraints, dict):
        filled: dict[str, Any] = {}
        for action, specs in constraints.items():
            if not isinstance(specs, list):
                filled[action] = specs  # compile_scope says what is wrong with it
                continue
            out = []
            for i, spec in enumerate(specs):
                if isinstance(spec, dict) and "bind" in spec:
                    name = spec["bind"]
                    if "value" in spec:
                        raise ScopeInvalid(f"{where}.constraints.{action}[{i}]: give 'value' or 'bind', not both")
                    if not isinstance(name, str) or name not in values:
                        raise ScopeInvalid(f"{where}.constraints.{action}[{i}].bind: {name!r} is not bound in 'bind'")
                    value: Any = values[name]
                    spec = {k: v for k, v in spec.items() if k != "bind"}
                    spec["value"] = [value] if spec.get("op") in ("in", "not_in") else value
                out.append(spec)
            filled[action] = out
        scope["constraints"] = filled
    return scope


def check_template(
    template: Any, *, workflow_actions: frozenset[str] | set[str], where: str = "scope_template"
) -> None:
    """Raise ScopeInvalid, with the place, for a template that could never bind (policy_apply)."""
    if template in (None, {}):
        return
    if not isinstance(template, dict):
        raise ScopeInvalid(f"{where}: must be a mapping with bind, actions and constraints")
    unknown = set(template) - {"bind", "actions", "constraints"}
    if unknown:
        raise ScopeInvalid(f"{where}: unknown keys {sorted(unknown)} (use bind, actions and constraints)")
    patterns = _bindings(template, where)
    compile_scope(
        _fill(template, {name: "x" for name in patterns}, where), workflow_actions=workflow_actions, where=where
    )


def bind(
    template: dict[str, Any], *, trigger_data: Mapping[str, Any], input: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """The template's scope for one session, and the values bound. Raises ScopeInvalid."""
    values: dict[str, str] = {}
    problems = []
    for name, pattern in sorted(_bindings(template, "scope_template").items()):
        if name in trigger_data:
            given = trigger_data[name]
            whole = compile_regex(f"^(?:{pattern})$")
            if not isinstance(given, str) or not given or whole.search(given) is not True:
                problems.append(f"trigger_data.{name}: must be text matching {pattern!r}")
            else:
                values[name] = given[:MAX_BOUND_LENGTH]
            continue
        found = sorted(set(compile_regex(pattern).findall(input or "")))
        if len(found) != 1:
            what = "names no" if not found else f"names {len(found)} different values for"
            problems.append(
                f"the workflow's scope template binds {name!r}: the session's input {what} {name} "
                f"(pattern {pattern!r}); give it as trigger data"
            )
        else:
            values[name] = found[0][:MAX_BOUND_LENGTH]
    if problems:
        raise ScopeInvalid("; ".join(problems))
    return _fill(template, values, "scope_template"), values


def merge(first: dict[str, Any] | None, second: dict[str, Any] | None) -> dict[str, Any] | None:
    """A scope inside both: the actions both allow, and the constraints of both."""
    if not first:
        return second or None
    if not second:
        return first
    merged: dict[str, Any] = {}
    actions = None
    if "actions" in first or "actions" in second:
        listed = [a for a in first.get("actions", second.get("actions", [])) if a in second.get("actions", [a])]
        actions = set(listed)
        if not listed:
            raise ScopeInvalid("scope.actions: the scope and the workflow's scope template leave no action in common")
        merged["actions"] = listed
    constraints: dict[str, list[Any]] = {}
    for source in (first, second):
        for action, specs in (source.get("constraints") or {}).items():
            if actions is None or action in actions:  # an action left out cannot be called at all
                constraints.setdefault(action, []).extend(specs if isinstance(specs, list) else [specs])
    if constraints:
        merged["constraints"] = constraints
    return merged


def session_scope(
    *,
    explicit: Any,
    template: Any,
    trigger_data: Mapping[str, Any] | None,
    input: str,
    workflow_actions: frozenset[str] | set[str],
) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The scope a new session runs under: what its initiator gave, narrowed further by the
    workflow's template bound to its trigger. Returns (scope or None, the bound values);
    raises ScopeInvalid with the place of the problem."""
    compile_scope(explicit, workflow_actions=workflow_actions)
    if trigger_data is not None and not isinstance(trigger_data, dict):
        raise ScopeInvalid("trigger_data: must map names to text")
    bound: dict[str, Any] | None = None
    values: dict[str, str] = {}
    if template:
        bound, values = bind(template, trigger_data=trigger_data or {}, input=input)
    scope = merge(explicit or None, bound)
    compile_scope(scope, workflow_actions=workflow_actions)
    return scope, values
