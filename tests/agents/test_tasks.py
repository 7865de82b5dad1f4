"""Celery tasks act only when the database says so: forged or duplicated messages do nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agents import gateway, runner, tasks
from agents.models import ActionRequest, AgentSession, SecurityAlert
from agents.services import session_queue_run
from audit.models import AuditEvent
from demo_systems.models import Refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def paused(demo, model_server) -> AgentSession:
    session = session_queue_run(
        agent="refund-bot", workflow="refund-triage", input="T-2002", trigger="test", initiated_by="user:alice"
    )
    runner.claim(session.pk, from_state=AgentSession.RunState.QUEUED)
    runner.run(session.pk)
    session.refresh_from_db()
    assert session.status == "awaiting_approval"
    return session


def test_a_forged_resume_for_an_unapproved_action_does_nothing(paused) -> None:
    ar = paused.action_requests.get(status="awaiting_approval")
    assert tasks.resume_session(str(paused.pk), str(ar.pk)) == "refused"
    ar.refresh_from_db()
    assert ar.status == "awaiting_approval" and not Refund.objects.exists()
    assert AuditEvent.objects.filter(kind="task.refused").count() == 1
    assert SecurityAlert.objects.filter(kind="forged_task").count() == 1


def test_a_forged_resume_naming_another_sessions_action_does_nothing(paused, start_session) -> None:
    other, _ = start_session()
    ar = paused.action_requests.get(status="awaiting_approval")
    assert tasks.resume_session(str(other.pk), str(ar.pk)) == "refused"
    assert not Refund.objects.exists()


def test_a_duplicated_resume_runs_the_session_once(paused) -> None:
    ar = paused.action_requests.get(status="awaiting_approval")
    gateway.release(ar)
    assert tasks.resume_session(str(paused.pk), str(ar.pk)) == "done"
    assert tasks.resume_session(str(paused.pk), str(ar.pk)) == "skipped"  # a redelivery, or the sweep's resend
    assert not AuditEvent.objects.filter(kind="task.refused").exists()  # and no noise in the trail
    assert Refund.objects.count() == 1
    paused.refresh_from_db()
    assert paused.status == "completed"


def test_a_duplicated_run_message_is_skipped(demo, model_server) -> None:
    session = session_queue_run(
        agent="support-bot", workflow="ticket-triage", input="x", trigger="test", initiated_by="user:alice"
    )
    assert tasks.run_session(str(session.pk)) == "done"
    assert tasks.run_session(str(session.pk)) == "skipped"


def test_the_sweep_ends_overrun_sessions_and_expires_late_approvals(paused, start_session) -> None:
    running, _ = start_session()
    AgentSession.objects.filter(pk=running.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    ActionRequest.objects.filter(session=paused).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tasks.sweep() == {"overrun": 1, "expired": 1, "restarted": 0}
    running.refresh_from_db()
    paused.refresh_from_db()
    assert (running.status, running.termination_reason) == ("terminated", "timeout")
    assert running.alerts.get().kind == "session_overrun"
    assert paused.status == "handed_off" and "expired" in paused.handoffs.get().trigger
    ar = paused.action_requests.get(action="crm.issue_refund")
    assert ar.status == "expired" and gateway.release(ar).decision == "deny"
    assert not Refund.objects.exists()


def test_the_sweep_restarts_a_run_whose_worker_died(demo, monkeypatch) -> None:
    session = session_queue_run(
        agent="support-bot", workflow="ticket-triage", input="x", trigger="test", initiated_by="user:alice"
    )
    AgentSession.objects.filter(pk=session.pk).update(
        run_state="running", run_lease_until=timezone.now() - timedelta(seconds=1)
    )
    sent = []
    monkeypatch.setattr(tasks.run_session, "delay", lambda *a: sent.append(a))
    assert tasks.sweep()["restarted"] == 1
    assert sent == [(str(session.pk),)]
