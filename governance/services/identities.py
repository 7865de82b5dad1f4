"""Agent identities: create, suspend, reactivate, deprovision, and withdraw a workflow.

`agent_identity_set_status` is the only code that writes AgentIdentity.status. Whatever path
asks (the provisioning UI, a policy file, a campaign, an overdue review, the kill switch), an
agent that stops being active has its live sessions ended in the same transaction, and a
deprovisioned agent is never reactivated.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

import audit
from governance.actors import Actor, Channel, as_actor
from governance.models import AgentIdentity, Workflow
from governance.roles import Role
from governance.services.base import Refused, finishing, require_role, require_stepup, withdraw_access

Status = AgentIdentity.Status


def _reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise Refused(f"{what} needs a reason: it is recorded in the audit trail")
    return reason[:500]


def agent_identity_set_status(
    *, actor: Any, agent: AgentIdentity, status: str, reason: str, check: bool = True, session_reason: str = ""
) -> AgentIdentity:
    """Move an agent to a status, with its audit event; end its sessions unless it is active.
    `check=False` is for callers that checked the actor already (a policy file being applied)."""
    actor = as_actor(actor)
    if status not in Status.values:
        raise Refused(f"unknown status {status!r}: active, suspended or deprovisioned")
    if check:
        # Security may pull the kill switch; everything else about identities is the admins'.
        may = {Role.ADMIN, Role.SECURITY} if status == Status.SUSPENDED else {Role.ADMIN}
        if actor.channel == Channel.UI and not actor.roles & may:
            raise Refused(f"you need the {' or '.join(sorted(may))} role to make an agent {status}")
        require_stepup(actor)
    with finishing(), transaction.atomic():
        locked = AgentIdentity.objects.select_for_update().get(pk=agent.pk)
        if locked.status == status:
            return locked
        if locked.status == Status.DEPROVISIONED:
            raise Refused(
                f"agent {locked.name!r} is deprovisioned, and a deprovisioned agent cannot be reactivated: create a new identity"
            )
        AgentIdentity.objects.filter(pk=locked.pk).update(status=status)
        ended = 0
        if status != Status.ACTIVE:
            # The sessions' termination reason is short and stable ("agent suspended"); the
            # person's own reason is in the event below.
            ended = withdraw_access(locked, workflow=None, reason=session_reason or f"agent {status}", actor=actor)
        if status == Status.DEPROVISIONED:
            locked.workflows.clear()
        audit.record(
            f"provisioning.agent_{status}",
            actor,
            outcome=status,
            details={
                "agent": locked.name,
                "from": locked.status,
                "reason": reason,
                "sessions_ended": ended,
                "auth": actor.auth_details(),
            },
        )
        locked.status = status
    return locked


def agent_identity_suspend(*, actor: Any, agent: AgentIdentity, reason: str) -> AgentIdentity:
    """The kill switch: the agent stops, and every live session of it ends now."""
    return agent_identity_set_status(
        actor=actor, agent=agent, status=Status.SUSPENDED, reason=_reason(reason, "suspending")
    )


def agent_identity_reactivate(*, actor: Any, agent: AgentIdentity, reason: str) -> AgentIdentity:
    return agent_identity_set_status(
        actor=actor, agent=agent, status=Status.ACTIVE, reason=_reason(reason, "reactivating")
    )


def agent_identity_deprovision(*, actor: Any, agent: AgentIdentity, reason: str) -> AgentIdentity:
    """For good: the identity keeps its history but loses its workflows and never runs again."""
    return agent_identity_set_status(
        actor=actor, agent=agent, status=Status.DEPROVISIONED, reason=_reason(reason, "deprovisioning")
    )


def agent_workflow_withdraw(*, actor: Any, agent: AgentIdentity, workflow: Workflow, reason: str) -> int:
    """Take one workflow from an agent; its sessions on that workflow end now. Returns how many."""
    actor = as_actor(actor)
    require_role(actor, Role.ADMIN)
    require_stepup(actor)
    reason = _reason(reason, "revoking a workflow")
    with finishing(), transaction.atomic():
        agent.workflows.remove(workflow)
        ended = withdraw_access(agent, workflow=workflow, reason=reason, actor=actor)
        audit.record(
            "provisioning.workflow_withdrawn",
            actor,
            workflow=workflow,
            outcome="withdrawn",
            details={"agent": agent.name, "reason": reason, "sessions_ended": ended, "auth": actor.auth_details()},
        )
    return ended


def agent_identity_create(
    *,
    actor: Actor,
    name: str,
    owner: str,
    description: str = "",
    recertify_by: str | dt.date | None = None,
    workflows: list[str] | None = None,
) -> AgentIdentity:
    """A new identity, through the same normalized state, validation and plan as policy files."""
    from governance.policyfile import from_database
    from governance.policyfile.state import normalize_item
    from governance.services.policy import apply_state

    name = (name or "").strip()
    owner = (owner or "").strip()
    # The name's form and length are checked by the policy validation that apply_state runs,
    # the same checks a policy file gets.
    if not owner:
        raise Refused("name the agent's owner (its sponsor)")
    state = from_database()
    if name in state["agents"]:
        raise Refused(f"an agent named {name!r} already exists")
    if isinstance(recertify_by, dt.date):
        recertify_by = recertify_by.isoformat()
    state["agents"][name] = normalize_item(
        "agents",
        {
            "owner": owner,
            "description": description or "",
            "workflows": list(workflows or []),
            "recertify_by": recertify_by or None,
        },
    )
    apply_state(state, actor=actor, kind="agent_created", details={"agent": name})
    return AgentIdentity.objects.get(name=name)
