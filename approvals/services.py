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
from governance import services as governance_services
from governance.actors import as_actor
from governance.roles import Capability

APPROVAL_WAIT = Histogram(
    "warden_approval_wait_seconds",
    "From a tier 3 request to a reviewer's decision",
    buckets=(5, 30, 60, 300, 900, 1800, 3600, 7200, 86400),
)


# One refusal type for every service a person calls, so views catch one exception.
DecisionRefused = governance_services.Refused


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


def action_request_check_reviewer(*, action_request: ActionRequest, reviewer: Any) -> None:
    """Whether this person may decide on this request at all: a reviewer, and not its session's
    initiator (separation of duties, audited when refused). Every way of deciding asks here."""
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


def action_request_decide(
    *,
    action_request: ActionRequest,
    reviewer: Any,
    decision: str,
    comment: str,
    params_hash: str,
    auth_session: Any = None,
    auth: dict[str, Any] | None = None,
) -> ActionRequest:
    """Record one reviewer's decision. On reaching the quorum, release the action; on a
    rejection, tell the agent why. Two reviewers deciding at once get one consistent outcome.

    `auth` is how the reviewer authenticated this decision when it is not the web sign-in in
    `auth_session`: an approval on their device (approvals/ciba.py) passes the verified ID
    token's claims and the token itself, kept with the decision as proof."""
    comment = (comment or "").strip()
    if decision not in ApprovalDecision.Decision.values:
        raise DecisionRefused("the decision must be approve or reject")
    auth = dict(auth) if auth is not None else _auth_context(auth_session)
    action_request_check_reviewer(action_request=action_request, reviewer=reviewer)
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
                # An approval on the device names its channel and the ID token it is proven by.
                **{
                    key: auth[key]
                    for key in ("method", "id_token_sha256")
                    if key in auth and auth.get("method") == "ciba"
                },
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


def _require(actor: Any, capability: str, refusal: str) -> None:
    """The role rule of a reviewer's service, checked here for every caller (views, tasks, commands)."""
    if not as_actor(actor).can(capability):
        raise DecisionRefused(refusal)


def handoff_claim(*, handoff: HumanHandoff, responder: Any) -> HumanHandoff:
    _require(responder, Capability.HANDLE_HANDOFFS, "you do not handle handoffs")
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
    _require(responder, Capability.HANDLE_HANDOFFS, "you do not handle handoffs")
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


def alert_update(*, alert: SecurityAlert, actor: Any, status: str, note: str = "") -> SecurityAlert:
    """Acknowledge or resolve an alert, with an optional note (kept, and audited)."""
    _require(actor, Capability.SEE_ALERTS, "only security staff handle security alerts")
    if status not in (SecurityAlert.Status.ACKNOWLEDGED, SecurityAlert.Status.RESOLVED):
        raise DecisionRefused("an alert can be acknowledged or resolved")
    note = (note or "").strip()[:2000]
    with transaction.atomic():
        locked = SecurityAlert.objects.select_for_update().get(pk=alert.pk)
        if locked.status == SecurityAlert.Status.RESOLVED:
            raise DecisionRefused("this alert is already resolved")
        locked.status, locked.handled_by, locked.handled_at = status, label(actor), timezone.now()
        if note:
            locked.note = f"{locked.note}\n{note}".strip()
        locked.save()
        audit.record(
            f"alert.{status}",
            actor,
            session=locked.session_id or "",
            outcome=status,
            details={"alert_id": locked.id, "kind": locked.kind, "note": note},
        )
    return locked


def alert_suspend_agent(*, alert: SecurityAlert, actor: Any, reason: str) -> SecurityAlert:
    """From an alert, pull the kill switch on its agent (the governance service checks the
    security or admin role, the step-up and the reason), and note it on the alert."""
    _require(actor, Capability.SEE_ALERTS, "only security staff handle security alerts")
    if alert.agent is None:
        raise DecisionRefused("this alert names no agent")
    reason = (reason or "").strip()
    governance_services.agent_identity_suspend(actor=actor, agent=alert.agent, reason=reason)
    return alert_update(
        alert=alert,
        actor=actor,
        status=SecurityAlert.Status.ACKNOWLEDGED,
        note=f"agent {alert.agent.name} suspended: {reason}",
    )


# Access reviews and campaigns change governance state: they live in governance.services, and
# stay importable from here for the reviewers' views.
access_review_decide = governance_services.access_review_decide
campaign_create = governance_services.campaign_create
campaign_item_decide = governance_services.campaign_item_decide
campaign_enforce_deadline = governance_services.campaign_enforce_deadline
