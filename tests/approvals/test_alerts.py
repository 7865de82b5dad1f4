"""Security alerts are something to act on: a detail page linked to the session's timeline,
a note, and the kill switch (step-up and a reason) from the alert itself or the CLI."""

from __future__ import annotations

import time

import pytest
from django.core.management import call_command
from django.test import Client

from agents import gateway, sessions
from agents.models import SecurityAlert
from audit.models import AuditEvent
from governance.models import AgentIdentity
from governance.oidc import SESSION_AUTH_CONTEXT
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db
BIG_REFUND = {"customer_id": "C-1002", "amount": 9999, "currency": "EUR", "reason": "x"}


def client_for(user, *, mfa: bool) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session[SESSION_AUTH_CONTEXT] = {"amr": ["pwd", "mfa"] if mfa else ["pwd"], "acr": "", "auth_time": time.time()}
    session.save()
    return client


@pytest.fixture
def tier4_alert(demo) -> SecurityAlert:
    _session, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    gateway.authorize(token, "crm.issue_refund", BIG_REFUND, tool_use_id="t1")
    return SecurityAlert.objects.get(kind="tier4_attempt")


def test_the_alert_page_links_to_the_session_timeline(tier4_alert) -> None:
    page = client_for(make_user("sam", "security"), mfa=False).get(f"/alerts/{tier4_alert.pk}/")
    text = page.content.decode()
    assert page.status_code == 200
    assert f"/audit/sessions/{tier4_alert.session_id}/" in text and "Suspend refund-bot" in text


def test_an_outsider_cannot_see_an_alert(tier4_alert) -> None:
    assert client_for(make_user("mallory"), mfa=True).get(f"/alerts/{tier4_alert.pk}/").status_code == 403


def test_suspending_from_an_alert_needs_a_step_up_and_a_reason(tier4_alert) -> None:
    other, _token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    sam = make_user("sam", "security")
    url = f"/alerts/{tier4_alert.pk}/suspend-agent/"
    assert client_for(sam, mfa=False).post(url, {"reason": "x"}).status_code == 302
    assert AgentIdentity.objects.get(name="refund-bot").status == "active"
    client = client_for(sam, mfa=True)
    client.post(url, {"reason": " "})
    assert AgentIdentity.objects.get(name="refund-bot").status == "active"
    client.post(url, {"reason": "tier 4 attempt under investigation"})
    assert AgentIdentity.objects.get(name="refund-bot").status == "suspended"
    other.refresh_from_db()
    assert other.status == "terminated"
    alert = SecurityAlert.objects.get(pk=tier4_alert.pk)
    assert alert.status == "acknowledged" and "under investigation" in alert.note
    event = AuditEvent.objects.get(kind="provisioning.agent_suspended")
    assert event.actor == "user:sam" and event.details["auth"]["amr"] == ["pwd", "mfa"]


def test_a_note_is_kept_with_the_alert(tier4_alert) -> None:
    client = client_for(make_user("sam", "security"), mfa=False)
    client.post(f"/alerts/{tier4_alert.pk}/resolved/", {"note": "expected: red team exercise"})
    alert = SecurityAlert.objects.get(pk=tier4_alert.pk)
    assert alert.status == "resolved" and alert.note == "expected: red team exercise"


def test_agent_suspend_from_the_cli(demo, capsys) -> None:
    session, _token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    call_command("agent_suspend", "refund-bot", reason="incident 42", actor="ops")
    session.refresh_from_db()
    assert session.status == "terminated"
    assert "1 live session(s) ended" in capsys.readouterr().out
    assert AuditEvent.objects.get(kind="provisioning.agent_suspended").actor == "cli:ops"
    with pytest.raises(SystemExit):
        call_command("agent_suspend", "nobody", reason="x")
