from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from agents import sessions
from agents.models import AgentSession, SessionToken
from audit.models import AuditEvent
from governance.models import AgentIdentity, Workflow

pytestmark = pytest.mark.django_db


def test_it_starts_a_session_with_a_token_stored_only_as_a_hash(start_session) -> None:
    session, token = start_session()
    row = SessionToken.objects.get(session=session)
    assert token.startswith("wst_") and len(token) > 40
    assert row.token_hash == sessions.hash_token(token)
    assert token not in str(list(SessionToken.objects.values())) and token not in str(session.__dict__)
    assert row.expires_at == session.expires_at
    assert abs((session.expires_at - session.created_at) - timedelta(seconds=900)) < timedelta(seconds=2)
    assert sessions.verify_token(token)[0] == session


def test_it_audits_the_trigger_initiator_workflow_and_scope(start_session) -> None:
    session, _ = start_session(trigger="webhook:helpdesk", initiated_by="user:alice")
    event = AuditEvent.objects.get(kind="session.started")
    assert (event.session, event.workflow, event.actor) == (str(session.pk), "refund-triage", "user:alice")
    assert event.details["trigger"] == "webhook:helpdesk"
    assert "write:crm.refund" in event.details["scope"]["grants"]
    assert event.details["scope"]["actions"]["crm.issue_refund"] == 2


def test_the_default_duration_is_15_minutes(demo) -> None:
    workflow = Workflow.objects.create(name="quick")
    agent = AgentIdentity.objects.get(name="refund-bot")
    agent.workflows.add(workflow)
    session, _ = sessions.start(agent, workflow, "test", "user:alice")
    assert abs((session.expires_at - session.created_at) - timedelta(minutes=15)) < timedelta(seconds=2)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"status": "suspended"}, "is suspended"),
        ({"status": "deprovisioned"}, "is deprovisioned"),
        ({"recertify_by": date(2020, 1, 1)}, "due for recertification"),
    ],
)
def test_it_refuses_an_agent_that_may_not_run_and_audits_it(start_session, change, reason) -> None:
    AgentIdentity.objects.filter(name="refund-bot").update(**change)
    with pytest.raises(sessions.SessionRefused, match=reason):
        start_session()
    assert not AgentSession.objects.exists()
    refusal = AuditEvent.objects.get(kind="session.refused")
    assert reason in refusal.details["reason"] and refusal.outcome == "refused"


def test_it_refuses_a_workflow_the_agent_is_not_assigned_to(start_session) -> None:
    with pytest.raises(sessions.SessionRefused, match="not assigned to workflow 'ticket-triage'"):
        start_session("refund-bot", "ticket-triage")
    assert AuditEvent.objects.filter(kind="session.refused").count() == 1


def test_it_refuses_unknown_names(demo) -> None:
    with pytest.raises(sessions.SessionRefused, match="unknown agent identity 'nobody'"):
        sessions.start("nobody", "refund-triage", "test", "user:alice")


def test_termination_revokes_wipes_and_verifies(start_session, kinds) -> None:
    session, token = start_session()
    kinds.mark()
    AgentSession.objects.filter(pk=session.pk).update(conversation=[{"role": "user", "content": "x"}])
    ended = sessions.terminate(session, reason="operator stop", actor="user:bob")
    assert (ended.status, ended.termination_reason, ended.termination_verified) == ("terminated", "operator stop", True)
    assert ended.conversation == []
    with pytest.raises(sessions.TokenInvalid, match="revoked"):
        sessions.verify_token(token)
    assert kinds() == ["session.terminated", "session.termination_verified", "alert.raised"]  # revoked token used


@pytest.mark.parametrize("token", ["", "nope", "wst_" + "A" * 43, None, 12, "wst_" + "x" * 500])
def test_unknown_and_malformed_tokens_are_refused(start_session, token) -> None:
    start_session()
    with pytest.raises(sessions.TokenInvalid):
        sessions.verify_token(token)


def test_an_expired_token_is_refused(start_session) -> None:
    session, token = start_session()
    SessionToken.objects.filter(session=session).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(sessions.TokenInvalid, match="expired"):
        sessions.verify_token(token)


def test_a_session_past_its_limit_is_terminated_as_an_anomaly(start_session) -> None:
    session, token = start_session()
    AgentSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(sessions.TokenInvalid) as info:
        sessions.verify_token(token)
    assert info.value.terminated
    session.refresh_from_db()
    assert (session.status, session.termination_reason, session.termination_verified) == ("terminated", "timeout", True)
    assert session.alerts.get().kind == "session_overrun"
