"""The tier decision: a pure function over an in-memory snapshot of one workflow.

decide() does no I/O once it has a WorkflowSnapshot. It denies by default: an unknown
action, a data object outside the access map, a write without a write grant, or
parameters that fail the action's JSON schema. Conditions raise tiers and never lower them;
they may read the session's facts (governance.facts), which the caller passes in. Last, the
destinations the call sends data to are checked (governance.destinations), so the decision
decide() gives is the one the gateway enforces and the decision API answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from jsonschema.exceptions import best_match
from referencing.exceptions import Unresolvable

from governance import destinations as dest
from governance.conditions import Node, compile_condition, unreadable_condition
from governance.facts import SessionFacts
from governance.paramschema import params_validator

if TYPE_CHECKING:
    from governance.models import Workflow

HUMAN_ONLY = 4  # governance.models.Tier.HUMAN_ONLY; policy.py stays free of model imports at decision time


@dataclass(frozen=True)
class ActionSpec:
    name: str
    system: str
    mode: str
    data_objects: tuple[str, ...]
    params_schema: Mapping[str, Any]
    validator: Any = field(compare=False, repr=False)  # governance.paramschema.params_validator
    egress: Any = field(default_factory=dict)  # {type, param} or a list of them (governance.destinations)
    sensitivity: int = 0  # the highest rank among its data objects


@dataclass(frozen=True)
class TierRule:
    action: str
    tier: int
    quorum: int
    conditions: tuple[Node, ...]


@dataclass(frozen=True)
class WorkflowSnapshot:
    name: str
    version: int
    grants: frozenset[tuple[str, str]]
    actions: Mapping[str, ActionSpec]
    tiers: Mapping[str, TierRule]
    destinations: tuple[Mapping[str, Any], ...] = ()
    mode: str = "enforce"  # or "log_only": decided and audited, nothing below tier 4 refused or queued
    out_of_scope: str = "refuse"  # what a call outside the session's scope gets: "refuse" or "3"
    unlisted_destinations: str | int = dest.REFUSE  # what an unlisted destination gets: refuse, or a tier


@dataclass(frozen=True)
class Decision:
    tier: int | None  # None: refused before any tier applies (outside the access map)
    allowed: bool  # False for every refusal, and for tier 4, which never executes
    reason: str
    grants_used: tuple[tuple[str, str], ...] = ()
    quorum: int = 1
    base_tier: int | None = None
    rules_applied: tuple[str, ...] = ()
    egress_refused: bool = False  # refused for where it sends data (the gateway alerts on it)


def build_snapshot(
    workflow: Mapping[str, Any],
    actions: Mapping[str, Mapping[str, Any]],
    lists: Mapping[str, list[Any]] | None = None,
    sensitivity: Mapping[str, str] | None = None,
) -> WorkflowSnapshot:
    """A snapshot from the policy-file form of a workflow and the action types it names.

    workflow: {name, version?, access: [{data_object, mode}], tiers: [{action, tier, quorum?, conditions?}]}
    actions:  name -> {system, mode, data_objects, params_schema}
    """
    from governance.models import Sensitivity

    lists = dict(lists or {})
    classes = dict(sensitivity or {})
    specs: dict[str, ActionSpec] = {}
    rules: dict[str, TierRule] = {}
    for tier in workflow.get("tiers", ()):
        name = tier["action"]
        action = actions.get(name)
        if action is None:
            continue  # unknown actions stay unknown, and so are denied
        schema = action.get("params_schema") or {}
        specs[name] = ActionSpec(
            name=name,
            system=action.get("system", ""),
            mode=action["mode"],
            data_objects=tuple(action.get("data_objects", ())),
            params_schema=schema,
            validator=params_validator(schema),
            egress=action.get("egress") or {},
            # A data object of unknown class counts as the most sensitive (fail closed).
            sensitivity=max(
                (Sensitivity.rank(classes.get(o, "restricted")) for o in action.get("data_objects", ())), default=0
            ),
        )
        conditions = tuple(_condition(c, lists, name) for c in tier.get("conditions") or ())
        rules[name] = TierRule(name, int(tier["tier"]), int(tier.get("quorum", 1)), conditions)
    grants = frozenset((g["data_object"], g["mode"]) for g in workflow.get("access", ()))
    return WorkflowSnapshot(
        name=workflow["name"],
        version=int(workflow.get("version", 1)),
        grants=grants,
        actions=MappingProxyType(specs),
        tiers=MappingProxyType(rules),
        destinations=tuple(dict(d) for d in workflow.get("destinations") or ()),
        mode=str(workflow.get("mode", "enforce")),
        out_of_scope=str(workflow.get("out_of_scope", "refuse")),
        unlisted_destinations=_unlisted(workflow.get("unlisted_destinations", dest.REFUSE)),
    )


def _unlisted(value: Any) -> str | int:
    """A stored outcome this version cannot read refuses (fail closed)."""
    if isinstance(value, int) and not isinstance(value, bool) and 2 <= value <= 3:
        return value
    return dest.REFUSE


def _condition(spec: Any, lists: dict[str, list[Any]], action: str) -> Node:
    """policy_apply refuses a condition that does not compile; one stored before a rule tightened
    (say, a pattern RE2 refuses) always holds instead of breaking every decision."""
    try:
        return compile_condition(spec, lists, action=action)
    except ValueError as exc:
        return unreadable_condition(spec, str(exc))


def snapshot(workflow: Workflow) -> WorkflowSnapshot:
    """Read one workflow and what it references from the database."""
    from governance.models import DataObject, ValueList

    tiers = list(workflow.tiers.select_related("action_type__system").prefetch_related("action_type__data_objects"))
    actions = {
        t.action_type.name: {
            "system": t.action_type.system.name,
            "mode": t.action_type.mode,
            "data_objects": [d.name for d in t.action_type.data_objects.all()],
            "params_schema": t.action_type.params_schema,
            "egress": t.action_type.egress,
        }
        for t in tiers
    }
    spec = {
        "name": workflow.name,
        "version": workflow.version,
        "destinations": workflow.destinations,
        "mode": workflow.mode,
        "out_of_scope": workflow.out_of_scope,
        "unlisted_destinations": workflow.unlisted_destinations,
        "access": [
            {"data_object": name, "mode": mode}
            for name, mode in workflow.grants.values_list("data_object__name", "mode")
        ],
        "tiers": [
            {"action": t.action_type.name, "tier": t.tier, "quorum": t.quorum, "conditions": t.conditions}
            for t in tiers
        ],
    }
    lists = dict(ValueList.objects.values_list("name", "values"))
    return build_snapshot(spec, actions, lists, dict(DataObject.objects.values_list("name", "sensitivity")))


def _schema_error(validator: Any, params: dict[str, Any]) -> str:
    """What is wrong, without echoing parameter values (they may be sensitive)."""
    error = best_match(validator.iter_errors(params))
    if error is None:
        return "invalid"
    where = ".".join(str(p) for p in error.absolute_path) or "the parameters"
    if error.validator in ("required", "additionalProperties", "propertyNames", "params_schema"):
        return f"{where}: {error.message}"
    return f"{where}: must satisfy {error.validator}={error.validator_value!r}"


def _schema_problem(validator: Any, params: dict[str, Any]) -> str | None:
    """None when params satisfy the schema. Whatever the schema cannot judge is refused."""
    try:
        return None if validator.is_valid(params) else _schema_error(validator, params)
    except Unresolvable:  # the validator cannot fetch, so a reference outside the schema ends here
        return "the schema refers to a document outside itself"
    except RecursionError:
        return "the parameters are nested too deeply to check"


def _deny(reason: str, grants: Iterable[tuple[str, str]] = ()) -> Decision:
    return Decision(tier=None, allowed=False, reason=reason, grants_used=tuple(grants))


def decide(
    workflow: WorkflowSnapshot | Workflow,
    action_name: str,
    params: Any,
    *,
    facts: SessionFacts | None = None,
) -> Decision:
    """The tier of one tool call, or a refusal, with a reason a person can read.

    `facts` are what Warden knows about the session (governance.facts); None means unknown, so
    every condition on a fact holds and destinations are judged as for the most sensitive data."""
    snap = workflow if isinstance(workflow, WorkflowSnapshot) else snapshot(workflow)
    action = snap.actions.get(action_name) if isinstance(action_name, str) else None
    rule = snap.tiers.get(action_name) if action is not None else None
    if action is None or rule is None:
        return _deny(f"unknown action {action_name!r}: it is not in the access map of workflow {snap.name!r}")
    if not action.data_objects:
        return _deny(f"action {action.name!r} names no data objects, so no grant can cover it")
    needed = tuple(sorted((obj, action.mode) for obj in action.data_objects))
    missing = [f"{mode} on {obj}" for obj, mode in needed if (obj, mode) not in snap.grants]
    if missing:
        return _deny(f"workflow {snap.name!r} has no grant for {', '.join(missing)} (needed by {action.name!r})")
    if not isinstance(params, dict):
        return _deny(f"parameters of {action.name!r} must be a JSON object, not {type(params).__name__}", needed)
    problem = _schema_problem(action.validator, params)
    if problem:
        return _deny(f"parameters do not match the schema of {action.name!r}: {problem}", needed)

    tier, applied = rule.tier, []
    for condition in rule.conditions:
        if condition.tier > rule.tier and condition.holds(params, facts):
            applied.append(f"{condition.describe()} -> tier {condition.tier}")
            tier = max(tier, condition.tier)
    outcome = None
    if tier < HUMAN_ONLY:  # tier 4 wins over everything, where the data would go included
        outcome = dest.check(
            snap.destinations, snap.unlisted_destinations, snap.name, action.name, action.egress, params, facts
        )
        if outcome.refused:
            return Decision(
                tier=tier,
                allowed=False,
                reason=f"destination refused: {outcome.refused}",
                grants_used=needed,
                quorum=rule.quorum,
                base_tier=rule.tier,
                rules_applied=tuple(applied),
                egress_refused=True,
            )
        if outcome.unlisted and outcome.tier > rule.tier:
            applied.append(f"{outcome.unlisted[0]} -> tier {outcome.tier}")
            tier = max(tier, outcome.tier)
    if applied:
        reason = f"tier {tier} (raised from {rule.tier}): " + "; ".join(applied)
    else:
        reason = f"tier {tier}: assigned to {action.name!r} in workflow {snap.name!r}"
    if tier >= HUMAN_ONLY:
        reason += "; human only, never executed by an agent"
    return Decision(
        tier=tier,
        allowed=tier < HUMAN_ONLY,
        reason=reason,
        grants_used=needed,
        quorum=rule.quorum,
        base_tier=rule.tier,
        rules_applied=tuple(applied),
    )
