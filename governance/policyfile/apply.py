"""Plan and apply a policy: the difference between the file and the database, in one transaction."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from auditlog.context import set_extra_data
from django.db import transaction
from django.db.models import Model, ProtectedError

import audit
from governance.actors import as_actor
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
    WorkflowVersion,
)
from governance.policyfile.load import PolicyError
from governance.policyfile.state import KINDS, State, from_database, workflow_spec

SINGULAR = {
    "lists": "list",
    "systems": "system",
    "data_objects": "data object",
    "action_types": "action type",
    "context_rules": "context rule",
    "workflows": "workflow",
    "agents": "agent",
}


# What takes something away: each needs --allow-delete.
REMOVALS = ("delete", "archive", "deprovision")


@dataclass(frozen=True)
class Change:
    op: str  # create | update | delete | archive | deprovision
    kind: str
    name: str
    fields: tuple[str, ...] = field(default=())
    diff: tuple[str, ...] = field(default=(), compare=False)  # field-level: "tiers[crm.x].tier: 2 -> 3"

    def __str__(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-", "archive": "-", "deprovision": "-"}[self.op]
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        if self.op == "archive":
            detail += " (it has sessions: archived, it starts no new one)"
        return f"{sign} {self.op} {SINGULAR[self.kind]} {self.name}{detail}"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


# Lists of objects that have a natural key: compared item by item, so a plan names the tier
# or the grant that changed instead of the whole list.
_LIST_KEYS = (("action",), ("data_object", "mode"), ("type", "value"))


def _list_key(old: list[Any], new: list[Any]) -> tuple[str, ...] | None:
    for key in _LIST_KEYS:
        if all(isinstance(i, dict) and all(k in i for k in key) for i in old + new) and (old or new):
            unique = all(len({tuple(str(i[k]) for k in key) for i in side}) == len(side) for side in (old, new))
            return key if unique else None
    return None


def field_changes(old: Any, new: Any, path: str = "") -> list[str]:
    """What changed between two specs, one line per leaf: `path: old -> new`, `+`, `-`."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            at = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(f"{at}: + {_show(new[key])}")
            elif key not in new:
                out.append(f"{at}: - {_show(old[key])}")
            else:
                out += field_changes(old[key], new[key], at)
        return out
    if isinstance(old, list) and isinstance(new, list):
        key = _list_key(old, new)
        if key is not None:
            before = {"/".join(str(i[k]) for k in key): i for i in old}
            after = {"/".join(str(i[k]) for k in key): i for i in new}
            return field_changes(before, after, path) if set(before) | set(after) else []
        if len(old) == len(new):
            return [
                line
                for i, (a, b) in enumerate(zip(old, new, strict=True))
                for line in field_changes(a, b, f"{path}[{i}]")
            ]
    return [f"{path}: {_show(old)} -> {_show(new)}"]


def plan(desired: State, current: State) -> list[Change]:
    changes: list[Change] = []
    for kind in KINDS:
        for name, spec in desired[kind].items():
            if name not in current[kind]:
                changes.append(Change("create", kind, name))
            elif spec != current[kind][name]:
                changed = tuple(k for k in spec if spec[k] != current[kind][name].get(k))
                diff = tuple(field_changes(current[kind][name], spec))
                changes.append(Change("update", kind, name, changed, diff))
    for kind in reversed(KINDS):
        for name, spec in current[kind].items():
            if name in desired[kind]:
                continue
            if kind == "agents":
                # Agents keep their history: leaving one out of the file deprovisions it.
                if spec["status"] != AgentIdentity.Status.DEPROVISIONED:
                    changes.append(Change("deprovision", kind, name))
            else:
                changes.append(Change("delete", kind, name))
    return changes


def summary(changes: list[Change]) -> str:
    count = {op: sum(c.op == op for c in changes) for op in ("create", "update", *REMOVALS)}
    text = f"Plan: {count['create']} to create, {count['update']} to update, {count['delete']} to delete"
    for op in ("archive", "deprovision"):
        if count[op]:
            text += f", {count[op]} to {op}"
    return text + "."


def owner_conflict(kind: str, name: str, package: str, current: State) -> str | None:
    """Why a file of `package` may not claim this object, or None. A file changes only its own
    package's objects; an object of the default package ("") may be adopted by a named one."""
    existing = current[kind].get(name)
    if existing is None or existing.get("package", "") in (package, ""):
        return None
    owner = existing["package"]
    mine = f"package {package!r}" if package else "a file without `package:`"
    return f"{SINGULAR[kind]} {name!r} belongs to package {owner!r}; {mine} cannot change it"


def owned(current: State, desired: State, package: str) -> State:
    """The part of the database that a file of `package` owns: its package's objects, and the
    objects of the default package that it names (which it adopts)."""
    return {
        kind: {
            name: spec
            for name, spec in current[kind].items()
            if spec.get("package", "") == package or (name in desired[kind] and spec.get("package", "") == "")
        }
        for kind in KINDS
    }


def _merged(desired: State, current: State, package: str) -> State:
    """The whole configuration as it would be after applying a file of `package`."""
    mine = owned(current, desired, package)
    return {
        kind: {**{n: s for n, s in current[kind].items() if n not in mine[kind]}, **desired[kind]} for kind in KINDS
    }


def _by_name(state: State) -> dict[str, tuple[str, str, str]]:
    """The problems of a whole configuration, each keyed by the object it is in (by name, not by
    index, so that two configurations can be compared): message -> (kind, name, text)."""
    from governance.policyfile.load import validate
    from governance.policyfile.state import to_document

    found = {}
    for error in validate(to_document(state)):
        head, _, rest = error.partition(": ")
        match = re.match(r"^(\w+)\[(\d+)\]|^lists\.([^.\[]+)", head)
        if not match:
            continue
        if match.group(3):
            kind, name = "lists", match.group(3)
        else:
            kind, name = match.group(1), sorted(state[match.group(1)])[int(match.group(2))]
        text = f"{head.replace(match.group(0), f'{kind}[{name}]', 1)}: {rest}"
        found[text] = (kind, name, text)
    return found


def _broken_elsewhere(desired: State, current: State, package: str) -> list[str]:
    """What the change would break in other packages (a list, data object or action they use).
    Problems the other packages already had are not this file's to fix."""
    merged = _merged(desired, current, package)
    before = _by_name(current)
    problems = []
    for text, (kind, name, _) in _by_name(merged).items():
        if name in desired[kind] or text in before:
            continue  # the file's own problems are reported by its validation, with their place
        owner = merged[kind][name].get("package", "") or "(default)"
        problems.append(f"{text} (package {owner} still needs what this file changes or removes)")
    return problems


def _has_history(name: str) -> bool:
    # Sessions point at their workflow (agents.AgentSession.workflow): one is enough to keep it.
    return Workflow.objects.filter(name=name, sessions__isnull=False).exists()


def plan_package(desired: State, current: State, package: str | None) -> tuple[list[Change], list[str]]:
    """The plan of a file of `package` against the whole database, and the problems that stop
    it (an object of another package, a removal that breaks another package). package=None:
    `desired` is the whole configuration (the provisioning UI's edits)."""
    errors: list[str] = []
    if package is None:
        mine = current
    else:
        for kind in KINDS:
            for name in desired[kind]:
                conflict = owner_conflict(kind, name, package, current)
                if conflict:
                    errors.append(f"{kind}.{name}: {conflict}")
        mine = owned(current, desired, package)
    changes = [
        replace(c, op="archive") if c.op == "delete" and c.kind == "workflows" and _has_history(c.name) else c
        for c in plan(desired, mine)
    ]
    if package is not None and not errors and changes:
        errors += _broken_elsewhere(desired, current, package)
    return changes, errors


def removal_problem(desired: State, changes: list[Change], *, package: str | None, allow_delete: bool) -> str | None:
    """Removing needs --allow-delete; a file that declares nothing never removes anything."""
    removals = [c for c in changes if c.op in REMOVALS]
    if not removals:
        return None
    names = ", ".join(f"{c.op} {SINGULAR[c.kind]} {c.name}" for c in removals[:10])
    more = f" and {len(removals) - 10} more" if len(removals) > 10 else ""
    if not any(desired[kind] for kind in KINDS):
        which = f"package {package!r}" if package else "the default package"
        return (
            f"(document): the file declares no objects, so it would remove every object of {which} "
            f"({len(removals)}: {names}{more}); refused even with --allow-delete"
        )
    if not allow_delete:
        return f"(plan): {len(removals)} removal(s) need --allow-delete: {names}{more}"
    return None


def _upsert(kind: str, name: str, spec: dict[str, Any], actor: str) -> None:
    if kind == "lists":
        ValueList.objects.update_or_create(name=name, defaults={"values": spec["values"], "package": spec["package"]})
    elif kind == "systems":
        System.objects.update_or_create(name=name, defaults=spec)
    elif kind == "data_objects":
        DataObject.objects.update_or_create(
            name=name, defaults={**spec, "system": System.objects.get(name=spec["system"])}
        )
    elif kind == "action_types":
        action, _ = ActionType.objects.update_or_create(
            name=name,
            defaults={
                "system": System.objects.get(name=spec["system"]),
                "mode": spec["mode"],
                "params_schema": spec["params_schema"],
                "description": spec["description"],
                "egress": spec["egress"],
                "package": spec["package"],
            },
        )
        action.data_objects.set(DataObject.objects.filter(name__in=spec["data_objects"]))
    elif kind == "context_rules":
        ContextRule.objects.update_or_create(data_type=name, defaults=spec)
    elif kind == "workflows":
        _upsert_workflow(name, spec, actor)
    elif kind == "agents":
        _upsert_agent(name, spec, actor)


def _upsert_agent(name: str, spec: dict[str, Any], actor: str) -> None:
    """Agent fields from the file; a status change or a workflow taken away goes through the
    identity services, so the agent's sessions end exactly as from any other path."""
    from governance.services import Refused, agent_identity_set_status
    from governance.services.base import withdraw_access

    fields = {
        "description": spec["description"],
        "owner": spec["owner"],
        "package": spec["package"],
        "recertify_by": dt.date.fromisoformat(spec["recertify_by"]) if spec["recertify_by"] else None,
    }
    agent = AgentIdentity.objects.select_for_update().filter(name=name).first()
    if agent is None:
        agent = AgentIdentity.objects.create(name=name, status=spec["status"], **fields)
    else:
        AgentIdentity.objects.filter(pk=agent.pk).update(**fields)
        if agent.status != spec["status"]:
            try:
                agent_identity_set_status(
                    actor=actor, agent=agent, status=spec["status"], reason="set in a policy file", check=False
                )
            except Refused as exc:
                raise PolicyError([f"agents.{name}.status: {exc}"]) from None
        for workflow in agent.workflows.exclude(name__in=spec["workflows"]):
            withdraw_access(agent, workflow=workflow, reason="workflow removed in a policy file", actor=as_actor(actor))
    agent.workflows.set(Workflow.objects.filter(name__in=spec["workflows"]))


def _upsert_workflow(name: str, spec: dict[str, Any], actor: str) -> None:
    keys = (
        "description",
        "owner",
        "max_session_seconds",
        "on_reject",
        "destinations",
        "unlisted_destinations",
        "mode",
        "scope_template",
    )
    fields: dict[str, Any] = {k: spec[k] for k in keys}
    # An archived workflow that a file names again is restored (its name and history are kept).
    fields.update(out_of_scope=str(spec["out_of_scope"]), package=spec["package"], archived_at=None)
    workflow = Workflow.objects.select_for_update().filter(name=name).first()
    if workflow is None:
        workflow = Workflow.objects.create(name=name, version=1, **fields)
    else:
        for key, value in fields.items():
            setattr(workflow, key, value)
        workflow.version += 1
        workflow.save()
        workflow.grants.all().delete()
        workflow.tiers.all().delete()
    objects = {o.name: o for o in DataObject.objects.filter(name__in=[g["data_object"] for g in spec["access"]])}
    AccessGrant.objects.bulk_create(
        AccessGrant(workflow=workflow, data_object=objects[g["data_object"]], mode=g["mode"]) for g in spec["access"]
    )
    actions = {a.name: a for a in ActionType.objects.filter(name__in=[t["action"] for t in spec["tiers"]])}
    TierAssignment.objects.bulk_create(
        TierAssignment(
            workflow=workflow,
            action_type=actions[t["action"]],
            tier=t["tier"],
            quorum=t["quorum"],
            conditions=t["conditions"],
        )
        for t in spec["tiers"]
    )
    new_spec = workflow_spec(workflow)
    WorkflowVersion.objects.create(workflow=workflow, version=workflow.version, spec=new_spec, created_by=actor)
    open_access_reviews(workflow, actor=actor)


def open_access_reviews(workflow: Workflow, *, actor: str) -> int:
    """After a new version: when the access map or the tiers changed, every agent of the
    workflow gets an access review, due in WARDEN_ACCESS_REVIEW_DAYS."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from governance.models import AccessReview
    from governance.versions import access_changed

    versions = list(workflow.versions.order_by("-version")[:2])
    if len(versions) < 2 or not access_changed(versions[1].spec, versions[0].spec):
        return 0
    due = timezone.now() + timedelta(days=settings.WARDEN_ACCESS_REVIEW_DAYS)
    opened = 0
    for agent in workflow.agents.exclude(status=AgentIdentity.Status.DEPROVISIONED):
        AccessReview.objects.create(
            agent=agent, workflow=workflow, from_version=versions[1].version, to_version=versions[0].version, due_by=due
        )
        audit.record(
            "review.opened",
            actor,
            workflow=workflow,
            outcome="open",
            details={"agent": agent.name, "version": versions[0].version, "due_by": due.isoformat()},
        )
        opened += 1
    return opened


_MODELS: dict[str, tuple[type[Model], str]] = {
    "lists": (ValueList, "name"),
    "systems": (System, "name"),
    "data_objects": (DataObject, "name"),
    "action_types": (ActionType, "name"),
    "context_rules": (ContextRule, "data_type"),
    "workflows": (Workflow, "name"),
}


def _archive(name: str, actor: str) -> None:
    """A workflow with history leaves the configuration but stays in the database: its sessions
    and audit events keep pointing at it. Its agents lose it (their live sessions end) and its
    access map goes, so that the objects it used can be removed; WorkflowVersion keeps the spec."""
    from django.utils import timezone

    from governance.services.base import withdraw_access

    workflow = Workflow.objects.select_for_update().get(name=name)
    for agent in workflow.agents.all():
        withdraw_access(agent, workflow=workflow, reason="workflow archived by a policy file", actor=as_actor(actor))
    workflow.agents.clear()
    workflow.grants.all().delete()
    workflow.tiers.all().delete()
    workflow.archived_at = timezone.now()
    workflow.save(update_fields=["archived_at", "updated_at"])


def _remove(change: Change, actor: str) -> None:
    if change.op == "archive":
        _archive(change.name, actor)
        return
    if change.op == "deprovision":
        from governance.services import agent_identity_set_status

        agent = AgentIdentity.objects.get(name=change.name)
        agent_identity_set_status(
            actor=actor,
            agent=agent,
            status=AgentIdentity.Status.DEPROVISIONED,
            reason="left out of the policy file",
            check=False,
        )
        return
    model, key = _MODELS[change.kind]
    try:
        # _default_manager is `objects` on all of these; it is the name typed on any Model.
        model._default_manager.get(**{key: change.name}).delete()
    except ProtectedError as exc:
        users = sorted({str(obj) for obj in exc.protected_objects})[:5]
        raise PolicyError(
            [f"{change.kind}: cannot delete {SINGULAR[change.kind]} {change.name!r}: still used by {', '.join(users)}"]
        ) from None


def apply_policy(
    desired: State,
    *,
    actor: str,
    dry_run: bool = False,
    source: str = "",
    package: str | None = None,
    allow_delete: bool = False,
) -> list[Change]:
    """Plan against the database and, unless dry_run, apply the plan and audit it, all in one
    transaction. `package`: the package the file owns (only its objects are created, changed or
    removed); None when `desired` is the whole configuration. Removing anything needs
    allow_delete. Raises PolicyError, with the plan, when the plan cannot be applied."""
    with transaction.atomic(), set_extra_data({"actor_email": actor}):
        changes, errors = plan_package(desired, from_database(), package)
        problem = removal_problem(desired, changes, package=package, allow_delete=allow_delete)
        if problem:
            errors.append(problem)
        if errors:
            raise PolicyError(errors, changes=changes)
        if dry_run or not changes:
            return changes
        for change in changes:
            if change.op in ("create", "update"):
                _upsert(change.kind, change.name, desired[change.kind][change.name], actor)
        for change in changes:
            if change.op in REMOVALS:
                _remove(change, actor)
        for change in changes:
            if change.op == "deprovision":
                continue  # agent_identity_set_status recorded provisioning.agent_deprovisioned
            audit.record(
                f"policy.{change.op}d",
                actor,
                workflow=change.name if change.kind == "workflows" else "",
                outcome="applied",
                details={
                    "kind": SINGULAR[change.kind],
                    "name": change.name,
                    "fields": list(change.fields),
                    **({"changes": list(change.diff[:50])} if change.diff else {}),
                    **({"package": package} if package else {}),
                },
            )
        audit.record(
            "policy.applied",
            actor,
            outcome="applied",
            details={"source": source, "summary": summary(changes), "changes": [str(c) for c in changes]},
        )
    return changes
