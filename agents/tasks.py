"""Celery tasks. Each takes ids, claims its work with a conditional update, and does nothing
when the database says the work is not (or no longer) theirs: a redelivered, duplicated or
forged message never executes anything on its own authority."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

import audit
from agents import gateway, runner, sessions
from agents.gateway import execution
from agents.models import ActionRequest, AgentSession, SecurityAlert
from governance.models import Tier

log = logging.getLogger(__name__)
RunState = AgentSession.RunState

# The statuses of a tier 3 action after which its paused session carries on (resume_session
# accepts exactly these). An action approved but not yet executed is not among them: the
# release that approved it executes it and then announces the session.
RESUMABLE_AFTER = (*ActionRequest.FINISHED, ActionRequest.Status.REJECTED)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_session(session_id: str) -> str:
    if not (runner.claim(session_id, from_state=RunState.QUEUED) or runner.take_over_stalled(session_id)):
        log.info("run_session %s: nothing to do (not queued, or another worker holds it)", session_id)
        return "skipped"
    return _run(session_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def resume_session(session_id: str, action_request_id: str) -> str:
    """Carry on a paused session once its tier 3 action has been decided."""
    ar = ActionRequest.objects.filter(pk=action_request_id, session__pk=session_id).select_related("session").first()
    decided = ar is not None and ar.status in RESUMABLE_AFTER
    if not decided or not runner.claim(session_id, from_state=RunState.PAUSED):
        session = AgentSession.objects.filter(pk=session_id).first()
        if session is not None and (decided or session.run_state == RunState.RUNNING):
            # A duplicate: of a message being handled, or of one for a decision that the session
            # has moved past (a redelivery, or the sweep's resend). It does nothing.
            log.info("resume_session %s: skipped, the session is %s", session_id, session.run_state)
            return "skipped"
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
    """Periodic: end overrun sessions, expire late approvals, restart sessions nobody is running."""
    now = timezone.now()
    overrun = 0
    for session in AgentSession.objects.filter(status=AgentSession.Status.ACTIVE, expires_at__lt=now):
        sessions.expire(session)
        overrun += 1
    expired = 0
    for ar in ActionRequest.objects.filter(status=ActionRequest.Status.AWAITING_APPROVAL, expires_at__lt=now):
        gateway.expire_request(ar)
        expired += 1
    restarted = restart_stranded(now)
    releases = finish_stranded_releases(now)
    from agents.connectors.postgres import reap_orphan_roles

    reaped = reap_orphan_roles()
    result = {"overrun": overrun, "expired": expired, "restarted": restarted}
    if reaped:
        result["roles_reaped"] = reaped
    if releases:
        result["releases_finished"] = releases
    return result


def restart_stranded(now: datetime) -> int:
    """Restart every session that should be making progress and that no worker holds.

    The rule is on states, not on messages: a session that is active (not waiting for a
    person) and queued, running, or paused after its tier 3 action was decided needs a worker.
    Whatever happened to the message meant to start it (a worker SIGKILLed before its claim
    committed, a file-broker message lost with its worker, a Redis message waiting out the
    visibility timeout), the sweep sends a new one once `run_lease_until` has passed. The claim
    in the task makes a duplicate do nothing. Sessions awaiting approval, and sessions driven
    by an external runtime (run state `api` or `external`), are never touched.

    `run_lease_until` is the worker's lease while a session runs (renewed at every step), and
    the deadline for a worker to claim it while it is queued or paused. The sweep moves that
    deadline on with a conditional update before it sends anything, so one message per lease
    period goes out however many sweeps (or beat processes) run.
    """
    active = AgentSession.objects.filter(status=AgentSession.Status.ACTIVE)
    unclaimed = Q(run_lease_until__isnull=True) | Q(run_lease_until__lt=now)
    restarted = 0
    # Running, but its worker stopped renewing the lease: back to the queue. (A worker that was
    # only slow finds the session no longer running at its next renewal, and stops.)
    for pk in active.filter(unclaimed, run_state=RunState.RUNNING).values_list("pk", flat=True):
        if _hand_to_a_worker(pk, RunState.RUNNING, now):
            log.warning("sweep: session %s was running but its lease ran out; queued it again", pk)
            run_session.delay(str(pk))
            restarted += 1
    # Queued, and no worker claimed it within a lease of its creation (or of the last resend).
    grace = timedelta(seconds=settings.WARDEN_RUNNER_LEASE_SECONDS)
    for pk in active.filter(unclaimed, run_state=RunState.QUEUED, created_at__lt=now - grace).values_list(
        "pk", flat=True
    ):
        if _hand_to_a_worker(pk, RunState.QUEUED, now):
            log.warning("sweep: session %s is queued and no worker claimed it; sent run_session again", pk)
            run_session.delay(str(pk))
            restarted += 1
    # Paused after a decision: the latest tier 3 action ran (or was rejected and the workflow
    # continues), and no worker resumed the session in time.
    latest = ActionRequest.objects.filter(session=OuterRef("pk"), tier=Tier.APPROVE).order_by("-created_at")
    paused = active.filter(unclaimed, run_state=RunState.PAUSED).annotate(
        decision=Subquery(latest.values("pk")[:1]), decision_status=Subquery(latest.values("status")[:1])
    )
    for pk, decision in paused.filter(decision_status__in=RESUMABLE_AFTER).values_list("pk", "decision"):
        if _hand_to_a_worker(pk, RunState.PAUSED, now):
            log.warning("sweep: session %s was decided but not resumed; sent resume_session again", pk)
            resume_session.delay(str(pk), str(decision))
            restarted += 1
    return restarted


def finish_stranded_releases(now: datetime) -> int:
    """Send `finish_release` for every approved action that nobody has executed within a lease
    of its approval: the process that released it died before its `executing` claim. Sessions
    driven through the decision API execute approved actions themselves and are left alone. The
    conditional touch of `updated_at` lets one message per lease go out, however many sweeps run."""
    cutoff = now - timedelta(seconds=settings.WARDEN_RUNNER_LEASE_SECONDS)
    stranded = ActionRequest.objects.filter(
        status=ActionRequest.Status.APPROVED, updated_at__lt=cutoff, session__status=AgentSession.Status.ACTIVE
    ).exclude(session__run_state=RunState.API)
    sent = 0
    for pk in stranded.values_list("pk", flat=True):
        touched = ActionRequest.objects.filter(
            pk=pk, status=ActionRequest.Status.APPROVED, updated_at__lt=cutoff
        ).update(updated_at=now)
        if touched == 1:
            log.warning("sweep: action %s was approved but never executed; sent finish_release", pk)
            finish_release.delay(str(pk))
            sent += 1
    return sent


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def finish_release(action_request_id: str) -> str:
    """Execute an approved action whose release died, or end its session in a defined state."""
    ar = ActionRequest.objects.filter(pk=action_request_id, status=ActionRequest.Status.APPROVED).first()
    if ar is None:
        return "skipped"  # executed, finished or ended meanwhile: a duplicate does nothing
    return execution.finish_release(ar).status


def _hand_to_a_worker(session_id: Any, run_state: str, now: datetime) -> bool:
    """Give a worker one lease from now to claim the session (a running one is queued again);
    False if the session changed meanwhile: claimed, ended, or another sweep got there first."""
    fields: dict[str, Any] = {"run_lease_until": now + timedelta(seconds=settings.WARDEN_RUNNER_LEASE_SECONDS)}
    if run_state == RunState.RUNNING:
        fields["run_state"] = RunState.QUEUED
    return (
        AgentSession.objects.filter(pk=session_id, status=AgentSession.Status.ACTIVE, run_state=run_state)
        .filter(Q(run_lease_until__isnull=True) | Q(run_lease_until__lt=now))
        .update(**fields)
        == 1
    )


def enqueue_resume(session_id: Any, action_request_id: Any, **_: Any) -> None:
    """A tier 3 decision let a paused session continue: send resume_session, and give a worker
    one lease to claim it before the sweep sends it again."""
    deadline = timezone.now() + timedelta(seconds=settings.WARDEN_RUNNER_LEASE_SECONDS)
    if AgentSession.objects.filter(pk=session_id, status=AgentSession.Status.ACTIVE, run_state=RunState.PAUSED).update(
        run_lease_until=deadline
    ):
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
