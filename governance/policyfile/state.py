"""One normalized form for a policy, whether it comes from a file or from the database.

State = {kind: {name: spec}}, with defaults filled in and unordered lists sorted, so that
comparing the two forms gives the plan, and exporting the database gives a file that
applies unchanged.
"""

from __future__ import annotations

from typing import Any

from governance.models import (
    AccessGrant,
    ActionType,
    AgentIdentity,
    ContextRule,
    DataObject,
    System,
    TierAssignment,
    ValueList,
    Workflow,
)

State = dict[str, dict[str, dict[str, Any]]]

# Dependency order: a kind only refers to kinds before it.
KINDS = ("lists", "systems", "data_objects", "action_types", "context_rules", "workflows", "agents")
KEY = {kind: "name" for kind in KINDS} | {"context_rules": "data_type"}

# Every object belongs to one package: the policy file that owns it ("" is the default package,
# the one of a file without `package:`). It is a field of every spec, so a plan shows a move.
DEFAULTS: dict[str, dict[str, Any]] = {
    "lists": {"values": []},
    "systems": {"display_name": "", "description": "", "config": {}},
    "data_objects": {"sensitivity": "internal", "description": "", "fields": {}},
    "action_types": {"description": "", "params_schema": {}, "egress": {}},
    "context_rules": {"handling": "full", "clear": "session", "persist": True, "description": ""},
    "workflows": {
        "description": "",
        "owner": "",
        "max_session_seconds": 900,
        "on_reject": "handoff",
        "mode": "enforce",
        "out_of_scope": "refuse",
        "scope_template": {},
        "unlisted_destinations": "refuse",
        "destinations": [],
        "access": [],
        "tiers": [],
    },
    "agents": {"description": "", "status": "active", "recertify_by": None, "workflows": []},
}
for _defaults in DEFAULTS.values():
    _defaults["package"] = ""


def _tier(tier: dict[str, Any]) -> dict[str, Any]:
    return {
        "action": tier["action"],
        "tier": tier["tier"],
        "quorum": tier.get("quorum", 1),
        "conditions": list(tier.get("conditions") or []),
    }


def normalize_item(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    spec = {**DEFAULTS[kind], **{k: v for k, v in item.items() if k != KEY[kind]}}
    if kind == "action_types":
        spec["data_objects"] = sorted(spec["data_objects"])
    elif kind == "workflows":
        spec["destinations"] = [{"clearance": "internal", **d} for d in spec["destinations"]]
        spec["access"] = sorted(
            ({"data_object": g["data_object"], "mode": g["mode"]} for g in spec["access"]),
            key=lambda g: (g["data_object"], g["mode"]),
        )
        spec["tiers"] = sorted((_tier(t) for t in spec["tiers"]), key=lambda t: t["action"])
    elif kind == "agents":
        spec["workflows"] = sorted(spec["workflows"])
    return spec


def package_of(doc: dict[str, Any]) -> str:
    """The package a policy document owns ("" when it names none)."""
    return str(doc.get("package") or "")


def from_document(doc: dict[str, Any]) -> State:
    state: State = {kind: {} for kind in KINDS}
    package = package_of(doc)
    for name, values in (doc.get("lists") or {}).items():
        state["lists"][name] = normalize_item("lists", {"values": list(values), "package": package})
    for kind in KINDS[1:]:
        for item in doc.get(kind) or []:
            state[kind][item[KEY[kind]]] = normalize_item(kind, {**item, "package": package})
    return state


def workflow_spec(workflow: Workflow) -> dict[str, Any]:
    """The normalized policy form of one workflow, as stored in WorkflowVersion."""
    grants = AccessGrant.objects.filter(workflow=workflow).values_list("data_object__name", "mode")
    tiers = TierAssignment.objects.filter(workflow=workflow).select_related("action_type")
    return normalize_item(
        "workflows",
        {
            "description": workflow.description,
            "owner": workflow.owner,
            "max_session_seconds": workflow.max_session_seconds,
            "on_reject": workflow.on_reject,
            "mode": workflow.mode,
            # "refuse", or the tier a person decides at; a file writes the tier as a number
            "out_of_scope": int(workflow.out_of_scope) if workflow.out_of_scope.isdigit() else workflow.out_of_scope,
            "scope_template": workflow.scope_template,
            "package": workflow.package,
            "unlisted_destinations": workflow.unlisted_destinations,
            "destinations": workflow.destinations,
            "access": [{"data_object": d, "mode": m} for d, m in grants],
            "tiers": [
                {"action": t.action_type.name, "tier": t.tier, "quorum": t.quorum, "conditions": t.conditions}
                for t in tiers
            ],
        },
    )


def from_database() -> State:
    state: State = {kind: {} for kind in KINDS}
    for vlist in ValueList.objects.all():
        state["lists"][vlist.name] = normalize_item("lists", {"values": vlist.values, "package": vlist.package})
    for system in System.objects.all():
        state["systems"][system.name] = normalize_item(
            "systems",
            {
                "display_name": system.display_name,
                "connector": system.connector,
                "description": system.description,
                "config": system.config,
                "package": system.package,
            },
        )
    for obj in DataObject.objects.select_related("system"):
        state["data_objects"][obj.name] = normalize_item(
            "data_objects",
            {
                "system": obj.system.name,
                "sensitivity": obj.sensitivity,
                "description": obj.description,
                "fields": obj.fields,
                "package": obj.package,
            },
        )
    for action in ActionType.objects.select_related("system").prefetch_related("data_objects"):
        state["action_types"][action.name] = normalize_item(
            "action_types",
            {
                "system": action.system.name,
                "mode": action.mode,
                "description": action.description,
                "data_objects": [d.name for d in action.data_objects.all()],
                "params_schema": action.params_schema,
                "egress": action.egress,
                "package": action.package,
            },
        )
    for rule in ContextRule.objects.all():
        state["context_rules"][rule.data_type] = normalize_item(
            "context_rules",
            {
                "handling": rule.handling,
                "clear": rule.clear,
                "persist": rule.persist,
                "description": rule.description,
                "package": rule.package,
            },
        )
    for workflow in Workflow.objects.filter(archived_at__isnull=True):  # archived: out of every file
        state["workflows"][workflow.name] = workflow_spec(workflow)
    for agent in AgentIdentity.objects.prefetch_related("workflows"):
        state["agents"][agent.name] = normalize_item(
            "agents",
            {
                "description": agent.description,
                "owner": agent.owner,
                "status": agent.status,
                "recertify_by": agent.recertify_by.isoformat() if agent.recertify_by else None,
                "workflows": [w.name for w in agent.workflows.all()],
                "package": agent.package,
            },
        )
    return state


# Fields that identify an item come first in an exported file, so it reads like a hand-written one.
_FIELD_ORDER = (
    "system",
    "connector",
    "display_name",
    "mode",
    "sensitivity",
    "owner",
    "status",
    "recertify_by",
    "handling",
    "clear",
    "persist",
    "description",
)


def _field_rank(field: str) -> int:
    return _FIELD_ORDER.index(field) if field in _FIELD_ORDER else len(_FIELD_ORDER)


def packages(state: State) -> set[str]:
    return {spec.get("package", "") for kind in KINDS for spec in state[kind].values()}


def only_package(state: State, package: str) -> State:
    return {kind: {n: s for n, s in state[kind].items() if s.get("package", "") == package} for kind in KINDS}


def to_document(state: State, package: str | None = None) -> dict[str, Any]:
    """A policy document for `state`, leaving out values equal to their defaults. With a
    package, only that package's objects, under `package: NAME`; without one, the document
    names a package when every object belongs to the same one."""
    if package is None:
        found = packages(state)
        package = found.pop() if len(found) == 1 else ""
    else:
        state = only_package(state, package)
    doc: dict[str, Any] = {"version": 1}
    if package:
        doc["package"] = package
    if state["lists"]:
        doc["lists"] = {name: spec["values"] for name, spec in sorted(state["lists"].items())}
    for kind in KINDS[1:]:
        items = []
        for name, spec in sorted(state[kind].items()):
            item: dict[str, Any] = {KEY[kind]: name}
            for field, value in sorted(spec.items(), key=lambda kv: _field_rank(kv[0])):
                if field == "package":
                    continue  # the document's, not the item's
                if kind == "workflows" and field == "tiers":
                    value = [
                        {
                            k: v
                            for k, v in t.items()
                            if not (k == "quorum" and v == 1) and not (k == "conditions" and not v)
                        }
                        for t in value
                    ]
                if field in DEFAULTS[kind] and DEFAULTS[kind][field] == value:
                    continue
                item[field] = value
            items.append(item)
        if items:
            doc[kind] = items
    return doc
