"""The sweep's recovery rule, in-process: every active session that should be making progress
(queued, running, or paused after its tier 3 action was decided) and that no worker holds is
restarted, whatever happened to its message; sessions waiting for a person, or driven by an
external runtime, are left alone. (With real worker processes: test_recovery_worker.py.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from agents import gateway, runner, sessions, tasks
from agents.gateway import execution
from agents.models import ActionRequest, AgentSession, SecurityAlert
from agents.services import session_queue_run
from audit.chain import verify
from demo_systems.models import Comment, IdempotencyRecord, Refund
from governance.models import AgentIdentity

pytestmark = pytest.mark.django_db


class Outbox:
    """The messages the sweep (or the release) would have sent; a lost message is one never run."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []
        for task in (tasks.run_session, tasks.resume_session, tasks.finish_release):
            monkeypatch.setattr(
                task, "delay", lambda *a, _name=task.name.rsplit(".", 1)[1]: self.sent.append((_name, a))
            )

    def take(self) -> list[tuple[str, tuple[Any, ...]]]:
        sent, self.sent = self.sent, []
        return sent


@pytest.fixture
def outbox(monkeypatch) -> Outbox:
    return Outbox(monkeypatch)


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run what the code under test defers to the commit (the messages it sends)."""
    return django_capture_on_commit_callbacks


def later(seconds: float = 1) -> Any:
    """A sweep that runs one lease (plus `seconds`) from now."""
    return timezone.now() + timedelta(seconds=settings.WARDEN_RUNNER_LEASE_SECONDS + seconds)


@pytest.fixture
def paused(demo, model_server, outbox) -> AgentSession:
    session = session_queue_run(
        agent="refund-bot", workflow="refund-triage", input="T-2002", trigger="test", initiated_by="user:alice"
    )
    assert runner.claim(session.pk, from_state=AgentSession.RunState.QUEUED)
    runner.run(session.pk)
    session.refresh_from_db()
    assert (session.status, session.run_state) == ("awaiting_approval", "paused")
    outbox.take()
    return session


def refund_request(session: AgentSession) -> ActionRequest:
    return session.action_requests.get(action="crm.issue_refund")


def test_an_approved_session_whose_resume_was_lost_is_resumed_after_one_lease(paused, outbox, on_commit) -> None:
    ar = refund_request(paused)
    with on_commit(execute=True):
        assert gateway.release(ar).status == "succeeded"
    assert outbox.take() == [("resume_session", (str(paused.pk), str(ar.pk)))]  # the message that gets lost
    assert tasks.restart_stranded(timezone.now()) == 0  # a worker still has a lease to claim it
    assert tasks.restart_stranded(later()) == 1
    assert outbox.take() == [("resume_session", (str(paused.pk), str(ar.pk)))]
    assert tasks.restart_stranded(timezone.now()) == 0  # one message per lease, however many sweeps run
    assert outbox.take() == []
    assert tasks.resume_session(str(paused.pk), str(ar.pk)) == "done"
    paused.refresh_from_db()
    assert paused.status == "completed"
    assert Refund.objects.count() == 1 and Comment.objects.count() == 1
    assert IdempotencyRecord.objects.count() == paused.action_requests.filter(tier__gte=2, status="succeeded").count()
    assert not SecurityAlert.objects.exists()
    assert verify().ok


def test_a_session_rejected_with_continue_is_resumed_too(paused, outbox, on_commit) -> None:
    with on_commit(execute=True):
        ar = gateway.reject(refund_request(paused), reason="not this one", actor="user:bob")
    assert ar.status == "rejected" and outbox.take()  # the workflow continues on rejection
    assert tasks.restart_stranded(later()) == 1
    assert outbox.take() == [("resume_session", (str(paused.pk), str(ar.pk)))]
    assert tasks.resume_session(str(paused.pk), str(ar.pk)) == "done"
    assert not Refund.objects.exists()


def test_the_sweep_sends_the_lost_resume_even_when_the_release_sent_none(paused, outbox, on_commit) -> None:
    """The approval came while the runner was still between "pending" and "paused": the release
    saw a running session and sent nothing; the runner then paused it."""
    ar = refund_request(paused)
    AgentSession.objects.filter(pk=paused.pk).update(run_state="running")
    with on_commit(execute=True):
        gateway.release(ar)
    assert outbox.take() == []
    AgentSession.objects.filter(pk=paused.pk).update(run_state="paused")
    assert tasks.restart_stranded(later()) == 1
    assert outbox.take() == [("resume_session", (str(paused.pk), str(ar.pk)))]


def test_sessions_waiting_for_a_person_or_an_unexecuted_release_are_left_alone(paused, outbox) -> None:
    assert tasks.restart_stranded(later()) == 0  # awaiting approval
    # Approved, but the release has not executed it yet: resuming now would be refused as forged.
    ActionRequest.objects.filter(pk=refund_request(paused).pk).update(status="approved")
    AgentSession.objects.filter(pk=paused.pk).update(status="active")
    assert tasks.restart_stranded(later()) == 0
    assert outbox.take() == []
    assert not SecurityAlert.objects.exists()


@pytest.mark.parametrize("run_state", ["api", "external", "done"])
def test_sessions_not_run_by_the_built_in_runner_are_never_restarted(demo, outbox, run_state) -> None:
    session = session_queue_run(
        agent="support-bot", workflow="ticket-triage", input="x", trigger="test", initiated_by="user:alice"
    )
    outbox.take()
    AgentSession.objects.filter(pk=session.pk).update(
        run_state=run_state, created_at=timezone.now() - timedelta(days=1), run_lease_until=None
    )
    assert tasks.restart_stranded(later()) == 0
    assert outbox.take() == []


def test_a_queued_session_gets_one_more_message_per_lease_once_its_first_is_overdue(demo, outbox, on_commit) -> None:
    with on_commit(execute=True):
        session = session_queue_run(
            agent="support-bot", workflow="ticket-triage", input="x", trigger="test", initiated_by="user:alice"
        )
    assert outbox.take() == [("run_session", (str(session.pk),))]
    assert tasks.restart_stranded(timezone.now()) == 0  # just queued: its message is on the way
    assert tasks.restart_stranded(later()) == 1
    assert outbox.take() == [("run_session", (str(session.pk),))]
    assert tasks.restart_stranded(timezone.now()) == 0
    assert tasks.restart_stranded(later(2 * settings.WARDEN_RUNNER_LEASE_SECONDS)) == 1
    assert outbox.take() == [("run_session", (str(session.pk),))]


def test_a_running_session_whose_lease_ran_out_is_queued_again_once(demo, model_server, outbox) -> None:
    session = session_queue_run(
        agent="support-bot", workflow="ticket-triage", input="x", trigger="test", initiated_by="user:alice"
    )
    assert runner.claim(session.pk, from_state=AgentSession.RunState.QUEUED)
    outbox.take()
    assert tasks.restart_stranded(timezone.now()) == 0  # its worker holds a live lease
    assert tasks.restart_stranded(later()) == 1
    assert outbox.take() == [("run_session", (str(session.pk),))]
    assert AgentSession.objects.get(pk=session.pk).run_state == "queued"
    assert tasks.restart_stranded(timezone.now()) == 0  # one message per lease, not one per sweep
    assert not runner._renew(session)  # the worker that lost its lease stops at its next step
    assert tasks.run_session(str(session.pk)) == "done"
    assert AgentSession.objects.get(pk=session.pk).status == "completed"


def test_an_approval_whose_release_died_before_executing_is_executed_once_after_a_lease(
    paused, outbox, on_commit
) -> None:
    """The releasing process committed `approved` and died before its `executing` claim."""
    ar = refund_request(paused)
    with on_commit(execute=True):
        execution.approve(ar, actor="user:bob")
    assert ActionRequest.objects.get(pk=ar.pk).status == "approved"
    outbox.take()
    assert tasks.finish_stranded_releases(timezone.now()) == 0  # it may still be on its way
    assert tasks.finish_stranded_releases(later()) == 1
    assert outbox.take() == [("finish_release", (str(ar.pk),))]
    assert tasks.finish_stranded_releases(later()) == 0  # one message per lease
    with on_commit(execute=True):
        assert tasks.finish_release(str(ar.pk)) == "succeeded"
    assert tasks.finish_release(str(ar.pk)) == "skipped"  # a duplicate does nothing
    assert Refund.objects.count() == 1
    assert outbox.take() == [("resume_session", (str(paused.pk), str(ar.pk)))]
    assert verify().ok


def test_an_approval_that_may_no_longer_run_goes_to_a_person_instead_of_staying_approved(
    paused, outbox, on_commit
) -> None:
    ar = refund_request(paused)
    with on_commit(execute=True):
        execution.approve(ar, actor="user:bob")
    AgentIdentity.objects.filter(pk=paused.agent_id).update(status="suspended")
    assert tasks.finish_release(str(ar.pk)) == "cancelled"
    assert Refund.objects.count() == 0
    paused.refresh_from_db()
    assert paused.status == "handed_off"
    assert paused.handoffs.get().trigger.startswith("approved crm.issue_refund could not be executed")


def test_an_approval_that_expired_before_its_release_finished_expires(paused, outbox, on_commit) -> None:
    ar = refund_request(paused)
    with on_commit(execute=True):
        execution.approve(ar, actor="user:bob")
    ActionRequest.objects.filter(pk=ar.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tasks.finish_release(str(ar.pk)) == "expired"
    assert Refund.objects.count() == 0
    assert AgentSession.objects.get(pk=paused.pk).status == "handed_off"


def test_approved_actions_of_api_sessions_are_executed_by_their_runtime_not_the_sweep(paused, outbox) -> None:
    ar = refund_request(paused)
    execution.approve(ar, actor="user:bob")
    AgentSession.objects.filter(pk=paused.pk).update(run_state="api")
    assert tasks.finish_stranded_releases(later()) == 0
    assert outbox.take() == []


def test_a_slow_worker_whose_session_another_worker_took_over_stops_at_its_next_step(
    demo, model_server, outbox
) -> None:
    """The lease belongs to the worker holding the live token: once the sweep has re-queued the
    session and a second worker has claimed it (issuing a new token), the first one's renewal
    fails although the session is running again."""
    session = session_queue_run(
        agent="support-bot", workflow="ticket-triage", input="x", trigger="test", initiated_by="user:alice"
    )
    assert runner.claim(session.pk, from_state=AgentSession.RunState.QUEUED)
    first = sessions.reissue_token(session)
    assert runner._renew(session, first)
    assert tasks.restart_stranded(later()) == 1  # the first worker stalled past its lease
    assert runner.claim(session.pk, from_state=AgentSession.RunState.QUEUED)
    second = sessions.reissue_token(session)
    assert AgentSession.objects.get(pk=session.pk).run_state == "running"
    assert not runner._renew(session, first)
    assert runner._renew(session, second)
