"""Celery tasks. Each takes ids, claims its work with a conditional update, and does nothing
when the database says the work is not (or no longer) theirs: a redelivered, duplicated or
forged message never executes anything on its own authority."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone

import audit
from agents import gateway, runner, sessions
from agents.models import ActionRequest, AgentSession, SecurityAlert

log = logging.getLogger(__name__)
RunState = AgentSession.RunState


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_session(session_id: str) -> str:
    if not (runner.claim(session_id, from_state=RunState.QUEUED) or runner.take_over_stalled(session_id)):
        log.info("run_session %s: nothing to do (not queued, or another worker holds it)", session_id)
        return "skipped"
    return _run(session_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def resume_session(session_id: str, action_request_id: str) -> str:
    """Carry on a paused session once its tier 3 action has been decided."""
    ar = ActionRequest.objects.filter(pk=action_request_id, session_id=session_id).select_related("session").first()
    decided = ar is not None and ar.status in (*ActionRequest.FINISHED, ActionRequest.Status.REJECTED)
    if not decided or not runner.claim(session_id, from_state=RunState.PAUSED):
        session = AgentSession.objects.filter(pk=session_id).first()
        if session is not None and session.run_state == RunState.RUNNING:
            return "skipped"  # a duplicate of a message already being handled
        reason = "the action has not been decided" if not decided else "the session is not paused and active"
        audit.record(
            "task.refused",
            "system:worker",
            session=session_id if session else "",
            workflow=session.workflow if session else "",
            outcome="refused",
            details={"task": "resume_session", "action_request": str(action_request_id), "reason": reason},
        )
        if ar is not None and not decided:
            sessions.raise_alert(
                SecurityAlert.Kind.FORGED_TASK,
                f"a resume message for undecided action {ar.action} was refused",
                session=ar.session,
                severity="medium",
            )
        return "refused"
    return _run(session_id)


def _run(session_id: str) -> str:
    try:
        return runner.run(session_id)
    except Exception as exc:
        # Never leave a session in an unknown state: hand it to a person, then re-raise for the log.
        session = AgentSession.objects.filter(pk=session_id).first()
        if session is not None and session.is_live:
            sessions.hand_off(
                session, trigger=f"runner error ({type(exc).__name__})", context=gateway.handoff_context(session)
            )
        raise


@shared_task(acks_late=True, ignore_result=True)
def sweep() -> dict[str, int]:
    """Periodic: end overrun sessions, expire late approvals, restart runs whose worker died."""
    now = timezone.now()
    overrun = 0
    for session in AgentSession.objects.filter(status=AgentSession.Status.ACTIVE, expires_at__lt=now):
        sessions.expire(session)
        overrun += 1
    expired = 0
    for ar in ActionRequest.objects.filter(status=ActionRequest.Status.AWAITING_APPROVAL, expires_at__lt=now):
        gateway.expire_request(ar)
        expired += 1
    stalled = list(
        AgentSession.objects.filter(
            status=AgentSession.Status.ACTIVE, run_state=RunState.RUNNING, run_lease_until__lt=now
        ).values_list("pk", flat=True)
    )
    for pk in stalled:
        run_session.delay(str(pk))
    queued = list(
        AgentSession.objects.filter(
            status=AgentSession.Status.ACTIVE, run_state=RunState.QUEUED, created_at__lt=now - timedelta(minutes=1)
        ).values_list("pk", flat=True)
    )
    for pk in queued:
        run_session.delay(str(pk))
    from agents.connectors.postgres import reap_orphan_roles

    reaped = reap_orphan_roles()
    result = {"overrun": overrun, "expired": expired, "restarted": len(stalled) + len(queued)}
    if reaped:
        result["roles_reaped"] = reaped
    return result


def enqueue_resume(session_id: Any, action_request_id: Any, **_: Any) -> None:
    if AgentSession.objects.filter(pk=session_id, run_state=RunState.PAUSED).exists():
        resume_session.delay(str(session_id), str(action_request_id))


@shared_task(acks_late=True, ignore_result=True)
def rotate_due_credentials() -> int:
    """Periodic: enqueue a rotation for every credential past its rotation period."""
    from agents.credentials import credentials_due

    due = credentials_due()
    for credential in due:
        rotate_credential.delay(credential.pk)
    return len(due)


@shared_task(
    acks_late=True,
    ignore_result=True,
    autoretry_for=(Exception,),
    retry_backoff=60,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=5,
)
def rotate_credential(credential_id: int) -> None:
    from agents.credentials import credential_rotate
    from governance.models import ServiceCredential

    credential = ServiceCredential.objects.filter(pk=credential_id).first()
    if credential is None or not credential.rotation_due:
        return  # gone, or rotated meanwhile: a duplicate message does nothing
    credential_rotate(credential)


@shared_task(acks_late=True, ignore_result=True)
def enforce_access_reviews() -> int:
    """Periodic: an agent whose access review is past its deadline is suspended."""
    from agents.services import agent_identity_suspend
    from governance.models import AccessReview

    suspended = 0
    for review in AccessReview.objects.filter(
        status=AccessReview.Status.OPEN, due_by__lt=timezone.now()
    ).select_related("agent", "workflow"):
        claimed = AccessReview.objects.filter(pk=review.pk, status=AccessReview.Status.OPEN).update(
            status=AccessReview.Status.EXPIRED, decided_by="system:reviews", decided_at=timezone.now()
        )
        if not claimed:
            continue
        audit.record(
            "review.expired",
            "system:reviews",
            workflow=review.workflow,
            outcome="expired",
            details={"agent": review.agent.name, "version": review.to_version},
        )
        if review.agent.status == review.agent.Status.ACTIVE:
            agent_identity_suspend(
                agent=review.agent,
                actor="system:reviews",
                reason=f"access review of {review.workflow.name} v{review.to_version} overdue",
            )
            suspended += 1
    return suspended
