"""Reviewers' decisions, handoffs and alerts: every state change with its audit event."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from prometheus_client import Histogram

import audit
from agents import gateway
from agents.models import ActionRequest, HumanHandoff, SecurityAlert
from approvals import policies
from approvals.models import ApprovalDecision
from audit.chain import label

APPROVAL_WAIT = Histogram(
    "warden_approval_wait_seconds",
    "From a tier 3 request to a reviewer's decision",
    buckets=(5, 30, 60, 300, 900, 1800, 3600, 7200, 86400),
)


class DecisionRefused(Exception):
    """The decision cannot be taken; the message says why, for the reviewer."""


def _auth_context(request_session: Any) -> dict[str, Any]:
    from governance.oidc import SESSION_AUTH_CONTEXT

    return dict(request_session.get(SESSION_AUTH_CONTEXT) or {}) if request_session is not None else {}


def _check_recent_auth(tier: int, auth: dict[str, Any]) -> None:
    max_age = settings.WARDEN_APPROVAL_MAX_AUTH_AGE
    if not max_age or (
        settings.WARDEN_APPROVAL_RECENT_AUTH_TIERS and tier not in settings.WARDEN_APPROVAL_RECENT_AUTH_TIERS
    ):
        return
    if time.time() - float(auth.get("auth_time") or 0) > max_age:
        raise DecisionRefused("this approval needs a recent sign-in: sign in again and retry")


def action_request_decide(
    *,
    action_request: ActionRequest,
    reviewer: Any,
    decision: str,
    comment: str,
    params_hash: str,
    auth_session: Any = None,
) -> ActionRequest:
    """Record one reviewer's decision. On reaching the quorum, release the action; on a
    rejection, tell the agent why. Two reviewers deciding at once get one consistent outcome."""
    comment = (comment or "").strip()
    if decision not in ApprovalDecision.Decision.values:
        raise DecisionRefused("the decision must be approve or reject")
    auth = _auth_context(auth_session)
    if not policies.can_review(reviewer):
        raise DecisionRefused("you are not a reviewer")
    if policies.is_initiator(reviewer, action_request.session):
        session = action_request.session
        audit.record(
            "approval.refused",
            reviewer,
            session=session,
            workflow=session.workflow,
            action=action_request.action,
            tier=action_request.tier,
            outcome="refused",
            details={"action_request": str(action_request.id), "reason": "separation of duties"},
        )
        raise DecisionRefused("you initiated this session, so you cannot decide on its actions")
    if decision == ApprovalDecision.Decision.REJECT and not comment:
        raise DecisionRefused("a rejection needs a comment: the agent and the initiator are told why")
    with transaction.atomic():
        ar = ActionRequest.objects.select_for_update().select_related("session__workflow").get(pk=action_request.pk)
        if ar.status != ActionRequest.Status.AWAITING_APPROVAL:
            raise DecisionRefused(f"this request is already {ar.status.replace('_', ' ')}")
        if ar.expires_at is not None and ar.expires_at <= timezone.now():
            raise DecisionRefused("this request has expired")
        if params_hash != ar.params_hash:
            raise DecisionRefused("the parameters changed since this page was loaded: reload it and review again")
        _check_recent_auth(ar.tier or 3, auth)
        if ApprovalDecision.objects.filter(action_request=ar, reviewer=reviewer).exists():
            raise DecisionRefused("you have already decided on this request")
        ApprovalDecision.objects.create(
            action_request=ar,
            reviewer=reviewer,
            decision=decision,
            comment=comment,
            params_hash=params_hash,
            auth_context=auth,
        )
        APPROVAL_WAIT.observe((timezone.now() - ar.created_at).total_seconds())
        approvals = ar.decisions.filter(decision=ApprovalDecision.Decision.APPROVE).count()
        audit.record(
            "approval.decided",
            reviewer,
            session=ar.session,
            workflow=ar.session.workflow,
            action=ar.action,
            tier=ar.tier,
            outcome=decision,
            details={
                "action_request": str(ar.id),
                "comment": comment,
                "params_hash": params_hash,
                "approvals": approvals,
                "quorum": ar.quorum,
                "amr": auth.get("amr", []),
                "acr": auth.get("acr", ""),
            },
        )
        reached = decision == ApprovalDecision.Decision.APPROVE and approvals >= ar.quorum
        if reached:
            # Approved inside the lock (so no rejection can slip in), executed after commit.
            ar, _session, problem = gateway.approve(ar, actor=label(reviewer))
            if problem:
                raise DecisionRefused(f"this request cannot be approved: {problem}")
        elif decision == ApprovalDecision.Decision.REJECT:
            # Inside the lock, so that no approval can slip in between.
            gateway.reject(ar, reason=comment, actor=label(reviewer))
    if reached:
        gateway.release(ar, actor=label(reviewer))  # runs the connector: outside the decision's transaction
    ar.refresh_from_db()
    return ar


def handoff_claim(*, handoff: HumanHandoff, responder: Any) -> HumanHandoff:
    with transaction.atomic():
        locked = HumanHandoff.objects.select_for_update().get(pk=handoff.pk)
        if locked.status != HumanHandoff.Status.OPEN:
            raise DecisionRefused(
                f"this handoff is already {locked.status}" + (f" by {locked.responder}" if locked.responder else "")
            )
        locked.status, locked.responder = HumanHandoff.Status.CLAIMED, label(responder)
        locked.save(update_fields=["status", "responder"])
        audit.record(
            "handoff.claimed",
            responder,
            session=locked.session_id,
            outcome="claimed",
            details={"handoff_id": locked.id},
        )
    return locked


def handoff_resolve(*, handoff: HumanHandoff, responder: Any, resolution: str) -> HumanHandoff:
    resolution = (resolution or "").strip()
    if not resolution:
        raise DecisionRefused("say how the handoff was resolved")
    with transaction.atomic():
        locked = HumanHandoff.objects.select_for_update().get(pk=handoff.pk)
        if locked.status == HumanHandoff.Status.RESOLVED:
            raise DecisionRefused("this handoff is already resolved")
        if locked.status == HumanHandoff.Status.CLAIMED and locked.responder != label(responder):
            raise DecisionRefused(f"this handoff is claimed by {locked.responder}")
        locked.status, locked.responder = HumanHandoff.Status.RESOLVED, label(responder)
        locked.resolution, locked.resolved_at = resolution, timezone.now()
        locked.save()
        audit.record(
            "handoff.resolved",
            responder,
            session=locked.session_id,
            outcome="resolved",
            details={"handoff_id": locked.id, "resolution": resolution},
        )
    return locked


def alert_update(*, alert: SecurityAlert, actor: Any, status: str) -> SecurityAlert:
    if status not in (SecurityAlert.Status.ACKNOWLEDGED, SecurityAlert.Status.RESOLVED):
        raise DecisionRefused("an alert can be acknowledged or resolved")
    with transaction.atomic():
        locked = SecurityAlert.objects.select_for_update().get(pk=alert.pk)
        if locked.status == SecurityAlert.Status.RESOLVED:
            raise DecisionRefused("this alert is already resolved")
        locked.status, locked.handled_by, locked.handled_at = status, label(actor), timezone.now()
        locked.save()
        audit.record(
            f"alert.{status}",
            actor,
            session=locked.session_id or "",
            outcome=status,
            details={"alert_id": locked.id, "kind": locked.kind},
        )
    return locked


def access_review_decide(*, review: Any, actor: Any, decision: str, note: str = "") -> Any:
    """Confirm that an agent keeps a changed workflow, or revoke it (its sessions on it end at once)."""
    from agents.models import AgentSession
    from agents.sessions import terminate
    from governance.models import AccessReview

    if decision not in ("confirm", "revoke"):
        raise DecisionRefused("an access review is confirmed or revoked")
    with transaction.atomic():
        locked = AccessReview.objects.select_for_update().select_related("agent", "workflow").get(pk=review.pk)
        if locked.status != AccessReview.Status.OPEN:
            raise DecisionRefused(f"this review is already {locked.status}")
        locked.status = AccessReview.Status.CONFIRMED if decision == "confirm" else AccessReview.Status.REVOKED
        locked.decided_by, locked.decided_at, locked.note = label(actor), timezone.now(), note.strip()
        locked.save()
        if decision == "revoke":
            locked.agent.workflows.remove(locked.workflow)
        audit.record(
            f"review.{locked.status}",
            actor,
            workflow=locked.workflow,
            outcome=locked.status,
            details={"agent": locked.agent.name, "version": locked.to_version, "note": locked.note},
        )
    if decision == "revoke":
        for session in AgentSession.objects.filter(
            agent=locked.agent, workflow=locked.workflow, status__in=AgentSession.LIVE
        ):
            terminate(session, reason="access revoked in review", actor=label(actor))
    return locked


# --- recertification campaigns ----------------------------------------------------------------


def campaign_create(*, name: str, scope: str, scope_value: str, deadline: Any, overdue_policy: str, actor: Any) -> Any:
    from governance.models import Campaign, CampaignItem, System
    from governance.recertification import agents_in_scope

    name, scope_value = (name or "").strip(), (scope_value or "").strip()
    if not name:
        raise DecisionRefused("give the campaign a name")
    if scope not in Campaign.Scope.values:
        raise DecisionRefused("the scope is all agents, by owner, or by system")
    if scope != Campaign.Scope.ALL and not scope_value:
        raise DecisionRefused(f"name the {scope} this campaign covers")
    if scope == Campaign.Scope.SYSTEM and not System.objects.filter(name=scope_value).exists():
        raise DecisionRefused(f"there is no system named {scope_value!r}")
    if deadline is None or deadline <= timezone.now():
        raise DecisionRefused("the deadline must be in the future")
    if overdue_policy not in Campaign.OverduePolicy.values:
        raise DecisionRefused("items not decided by the deadline are revoked or suspended")
    agents = list(agents_in_scope(scope, scope_value))
    if not agents:
        raise DecisionRefused("no agent identity is in this scope")
    with transaction.atomic():
        campaign = Campaign.objects.create(
            name=name,
            scope=scope,
            scope_value=scope_value,
            deadline=deadline,
            overdue_policy=overdue_policy,
            created_by=label(actor),
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


def _end_sessions(agent: Any, actor: Any, reason: str, workflow: Any = None) -> int:
    from agents.models import AgentSession
    from agents.sessions import terminate

    live = AgentSession.objects.filter(agent=agent, status__in=AgentSession.LIVE)
    if workflow is not None:
        live = live.filter(workflow=workflow)
    for session in live:
        terminate(session, reason=reason, actor=label(actor))
    return len(live)


def campaign_item_decide(*, item: Any, actor: Any, decision: str, workflow: str = "", note: str = "") -> Any:
    """Certify an agent's access, or revoke one of its workflows, or the agent itself. A
    revocation takes effect at once: the agent's sessions end, with verified termination."""
    from governance.models import AgentIdentity, CampaignItem
    from governance.recertification import effective_access

    if decision not in ("certify", "revoke_workflow", "revoke_agent"):
        raise DecisionRefused("certify, revoke a workflow, or revoke the agent")
    with transaction.atomic():
        locked = CampaignItem.objects.select_for_update().select_related("agent", "campaign").get(pk=item.pk)
        if locked.status != CampaignItem.Status.PENDING:
            raise DecisionRefused(f"this item is already {locked.status}")
        if locked.campaign.closed_at is not None:
            raise DecisionRefused("this campaign is closed")
        agent = locked.agent
        locked.evidence = effective_access(agent)
        target = None
        if decision == "revoke_workflow":
            target = agent.workflows.filter(name=workflow).first()
            if target is None:
                raise DecisionRefused(f"{agent.name} has no workflow {workflow!r}")
            agent.workflows.remove(target)
            locked.revoked = [f"workflow {workflow}"]
        elif decision == "revoke_agent":
            locked.revoked = [f"workflow {w}" for w in agent.workflows.values_list("name", flat=True)] + ["agent"]
            agent.workflows.clear()
            AgentIdentity.objects.filter(pk=agent.pk).update(status=AgentIdentity.Status.DEPROVISIONED)
        locked.status = CampaignItem.Status.CERTIFIED if decision == "certify" else CampaignItem.Status.REVOKED
        locked.decided_by, locked.decided_at, locked.note = label(actor), timezone.now(), (note or "").strip()
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
    if decision != "certify":
        _end_sessions(agent, actor, "access revoked in recertification", target)
    return locked


def campaign_enforce_deadline(campaign: Any) -> int:
    """Items not decided by the deadline follow the campaign's policy."""
    from agents.services import agent_identity_suspend
    from governance.models import AgentIdentity, Campaign, CampaignItem

    enforced = 0
    for item in campaign.items.filter(status=CampaignItem.Status.PENDING).select_related("agent"):
        if not CampaignItem.objects.filter(pk=item.pk, status=CampaignItem.Status.PENDING).update(
            status=CampaignItem.Status.OVERDUE, decided_by="system:recertification", decided_at=timezone.now()
        ):
            continue
        if campaign.overdue_policy == Campaign.OverduePolicy.REVOKE:
            CampaignItem.objects.filter(pk=item.pk).update(
                revoked=[f"workflow {w}" for w in item.agent.workflows.values_list("name", flat=True)]
            )
            item.agent.workflows.clear()
            _end_sessions(item.agent, "system:recertification", "recertification overdue")
        elif item.agent.status == AgentIdentity.Status.ACTIVE:
            agent_identity_suspend(
                agent=item.agent, actor="system:recertification", reason=f"recertification {campaign.name} overdue"
            )
        audit.record(
            "recertification.item_overdue",
            "system:recertification",
            outcome=campaign.overdue_policy,
            details={"campaign": campaign.pk, "agent": item.agent.name},
        )
        enforced += 1
    Campaign.objects.filter(pk=campaign.pk, closed_at__isnull=True).update(closed_at=timezone.now())
    return enforced
