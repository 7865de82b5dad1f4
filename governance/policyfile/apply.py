"""Plan and apply a policy: the difference between the file and the database, in one transaction."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Change:
    op: str  # create | update | delete | deprovision
    kind: str
    name: str
    fields: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-", "deprovision": "-"}[self.op]
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{sign} {self.op} {SINGULAR[self.kind]} {self.name}{detail}"


def plan(desired: State, current: State) -> list[Change]:
    changes: list[Change] = []
    for kind in KINDS:
        for name, spec in desired[kind].items():
            if name not in current[kind]:
                changes.append(Change("create", kind, name))
            elif spec != current[kind][name]:
                changed = tuple(k for k in spec if spec[k] != current[kind][name].get(k))
                changes.append(Change("update", kind, name, changed))
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
    count = {op: sum(c.op == op for c in changes) for op in ("create", "update", "delete", "deprovision")}
    text = f"Plan: {count['create']} to create, {count['update']} to update, {count['delete']} to delete"
    if count["deprovision"]:
        text += f", {count['deprovision']} to deprovision"
    return text + "."


def _upsert(kind: str, name: str, spec: dict[str, Any], actor: str) -> None:
    if kind == "lists":
        ValueList.objects.update_or_create(name=name, defaults={"values": spec["values"]})
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
    keys = ("description", "owner", "max_session_seconds", "on_reject", "destinations", "unlisted_destinations")
    fields = {k: spec[k] for k in keys}
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


def _remove(change: Change, actor: str) -> None:
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


def apply_policy(desired: State, *, actor: str, dry_run: bool = False, source: str = "") -> list[Change]:
    """Plan against the database and, unless dry_run, apply the plan and audit it, all in one transaction."""
    with transaction.atomic(), set_extra_data({"actor_email": actor}):
        changes = plan(desired, from_database())
        if dry_run or not changes:
            return changes
        for change in changes:
            if change.op in ("create", "update"):
                _upsert(change.kind, change.name, desired[change.kind][change.name], actor)
        for change in changes:
            if change.op in ("delete", "deprovision"):
                _remove(change, actor)
        for change in changes:
            if change.op == "deprovision":
                continue  # agent_identity_set_status recorded provisioning.agent_deprovisioned
            audit.record(
                f"policy.{change.op}d",
                actor,
                workflow=change.name if change.kind == "workflows" else "",
                outcome="applied",
                details={"kind": SINGULAR[change.kind], "name": change.name, "fields": list(change.fields)},
            )
        audit.record(
            "policy.applied",
            actor,
            outcome="applied",
            details={"source": source, "summary": summary(changes), "changes": [str(c) for c in changes]},
        )
    return changes
