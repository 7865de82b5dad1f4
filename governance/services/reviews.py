"""Access reviews (opened when a workflow's access map or tiers change) and recertification
campaigns. A revocation takes effect at once: the agent's sessions end, with verified
termination. Nobody confirms the review of a change they made."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

import audit
from audit.actors import RECERTIFICATION
from governance.actors import Actor, Channel, as_actor
from governance.models import AccessReview, AgentIdentity, Campaign, CampaignItem, System, WorkflowVersion
from governance.roles import Role
from governance.services.base import Refused, finishing, withdraw_access
from governance.services.identities import agent_identity_set_status


def _require_compliance(actor: Actor, *, also: frozenset[str] = frozenset()) -> None:
    if actor.channel == Channel.UI and not actor.roles & ({Role.COMPLIANCE} | also):
        raise Refused("this decision needs the compliance role")


def access_review_decide(*, actor: Any, review: AccessReview, decision: str, note: str = "") -> AccessReview:
    """Confirm that an agent keeps a changed workflow, or revoke it (its sessions on it end at once)."""
    actor = as_actor(actor)
    if decision not in ("confirm", "revoke"):
        raise Refused("an access review is confirmed or revoked")
    _require_compliance(actor, also=frozenset({Role.ADMIN}))
    with finishing(), transaction.atomic():
        locked = AccessReview.objects.select_for_update().select_related("agent", "workflow").get(pk=review.pk)
        if locked.status != AccessReview.Status.OPEN:
            raise Refused(f"this review is already {locked.status}")
        author = (
            WorkflowVersion.objects.filter(workflow=locked.workflow, version=locked.to_version)
            .values_list("created_by", flat=True)
            .first()
        )
        if decision == "confirm" and author and author.lower() in actor.identities:
            raise Refused("you made this change, so someone else must confirm it (separation of duties)")
        locked.status = AccessReview.Status.CONFIRMED if decision == "confirm" else AccessReview.Status.REVOKED
        locked.decided_by, locked.decided_at, locked.note = actor.label, timezone.now(), (note or "").strip()
        locked.save()
        ended = 0
        if decision == "revoke":
            locked.agent.workflows.remove(locked.workflow)
            ended = withdraw_access(
                locked.agent, workflow=locked.workflow, reason="access revoked in review", actor=actor
            )
        audit.record(
            f"review.{locked.status}",
            actor,
            workflow=locked.workflow,
            outcome=locked.status,
            details={
                "agent": locked.agent.name,
                "version": locked.to_version,
                "note": locked.note,
                "sessions_ended": ended,
            },
        )
    return locked


def campaign_create(
    *, name: str, scope: str, scope_value: str, deadline: Any, overdue_policy: str, actor: Any
) -> Campaign:
    from governance.recertification import agents_in_scope

    actor = as_actor(actor)
    _require_compliance(actor)
    name, scope_value = (name or "").strip(), (scope_value or "").strip()
    if not name:
        raise Refused("give the campaign a name")
    if len(name) > Campaign._meta.get_field("name").max_length:  # type: ignore[operator]
        raise Refused("the campaign name is too long")
    if scope not in Campaign.Scope.values:
        raise Refused("the scope is all agents, by owner, or by system")
    if scope != Campaign.Scope.ALL and not scope_value:
        raise Refused(f"name the {scope} this campaign covers")
    if scope == Campaign.Scope.SYSTEM and not System.objects.filter(name=scope_value).exists():
        raise Refused(f"there is no system named {scope_value!r}")
    if deadline is None or deadline <= timezone.now():
        raise Refused("the deadline must be in the future")
    if overdue_policy not in Campaign.OverduePolicy.values:
        raise Refused("items not decided by the deadline are revoked or suspended")
    agents = list(agents_in_scope(scope, scope_value))
    if not agents:
        raise Refused("no agent identity is in this scope")
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name,
            scope=scope,
            scope_value=scope_value,
            deadline=deadline,
            overdue_policy=overdue_policy,
            created_by=actor.label,
        )
        CampaignItem.objects.bulk_create(CampaignItem(campaign=campaign, agent=a) for a in agents)
        audit.record(
            "recertification.campaign_created",
            actor,
            outcome="open",
            details={
                "campaign": campaign.pk,
                "name": name,
                "scope": scope,
                "scope_value": scope_value,
                "agents": [a.name for a in agents],
                "deadline": deadline.isoformat(),
            },
        )
    return campaign


def campaign_item_decide(
    *, item: CampaignItem, actor: Any, decision: str, workflow: str = "", note: str = ""
) -> CampaignItem:
    """Certify an agent's access, or revoke one of its workflows, or the agent itself. A
    revocation takes effect at once: the agent's sessions end, with verified termination."""
    from governance.recertification import effective_access

    actor = as_actor(actor)
    _require_compliance(actor)
    if decision not in ("certify", "revoke_workflow", "revoke_agent"):
        raise Refused("certify, revoke a workflow, or revoke the agent")
    with finishing(), transaction.atomic():
        locked = CampaignItem.objects.select_for_update().select_related("agent", "campaign").get(pk=item.pk)
        if locked.status != CampaignItem.Status.PENDING:
            raise Refused(f"this item is already {locked.status}")
        if locked.campaign.closed_at is not None:
            raise Refused("this campaign is closed")
        agent = locked.agent
        locked.evidence = effective_access(agent)
        reason = "access revoked in recertification"
        if decision == "revoke_workflow":
            target = agent.workflows.filter(name=workflow).first()
            if target is None:
                raise Refused(f"{agent.name} has no workflow {workflow!r}")
            agent.workflows.remove(target)
            withdraw_access(agent, workflow=target, reason=reason, actor=actor)
            locked.revoked = [f"workflow {workflow}"]
        elif decision == "revoke_agent":
            locked.revoked = [f"workflow {w}" for w in agent.workflows.values_list("name", flat=True)] + ["agent"]
            agent_identity_set_status(
                actor=actor,
                agent=agent,
                status=AgentIdentity.Status.DEPROVISIONED,
                reason=f"{reason} {locked.campaign.name}",
                check=False,
                session_reason=reason,
            )
        locked.status = CampaignItem.Status.CERTIFIED if decision == "certify" else CampaignItem.Status.REVOKED
        locked.decided_by, locked.decided_at, locked.note = actor.label, timezone.now(), (note or "").strip()
        locked.save()
        audit.record(
            "recertification.item_decided",
            actor,
            outcome=locked.status,
            details={
                "campaign": locked.campaign_id,
                "agent": agent.name,
                "decision": decision,
                "revoked": locked.revoked,
                "note": locked.note,
            },
        )
    return locked


def campaign_enforce_deadline(campaign: Campaign) -> int:
    """Items not decided by the deadline follow the campaign's policy."""
    actor = Actor.system(RECERTIFICATION)
    enforced = 0
    for item in campaign.items.filter(status=CampaignItem.Status.PENDING).select_related("agent"):
        with finishing(), transaction.atomic():
            if not CampaignItem.objects.filter(pk=item.pk, status=CampaignItem.Status.PENDING).update(
                status=CampaignItem.Status.OVERDUE, decided_by=actor.label, decided_at=timezone.now()
            ):
                continue
            reason = f"recertification {campaign.name} overdue"
            if campaign.overdue_policy == Campaign.OverduePolicy.REVOKE:
                CampaignItem.objects.filter(pk=item.pk).update(
                    revoked=[f"workflow {w}" for w in item.agent.workflows.values_list("name", flat=True)]
                )
                item.agent.workflows.clear()
                withdraw_access(item.agent, workflow=None, reason=reason, actor=actor)
            elif item.agent.status == AgentIdentity.Status.ACTIVE:
                agent_identity_set_status(
                    actor=actor, agent=item.agent, status=AgentIdentity.Status.SUSPENDED, reason=reason
                )
            audit.record(
                "recertification.item_overdue",
                actor,
                outcome=campaign.overdue_policy,
                details={"campaign": campaign.pk, "agent": item.agent.name},
            )
        enforced += 1
    Campaign.objects.filter(pk=campaign.pk, closed_at__isnull=True).update(closed_at=timezone.now())
    return enforced
