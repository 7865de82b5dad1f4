"""Authorized destinations: data leaves only for places the workflow lists, at its clearance."""

from __future__ import annotations

import pytest
import yaml
from django.core import mail

from agents import gateway, runner, sessions
from agents.destinations import _matches
from agents.models import AgentSession, SecurityAlert
from agents.services import session_queue_run
from audit.models import AuditEvent
from governance.models import Workflow
from governance.policyfile import apply_policy, from_document, load
from tests.approvals.test_notifications import Receiver
from tests.conftest import EXAMPLE_POLICY

pytestmark = pytest.mark.django_db


def run(agent: str, workflow: str, text: str) -> AgentSession:
    session = session_queue_run(agent=agent, workflow=workflow, input=text, trigger="test", initiated_by="user:dana")
    runner.claim(session.pk, from_state=AgentSession.RunState.QUEUED)
    runner.run(session.pk)
    return AgentSession.objects.get(pk=session.pk)


def test_the_scripted_exfiltration_is_refused_alerted_audited_and_nothing_is_sent(demo, model_server) -> None:
    session = run("support-bot", "ticket-triage", "[script: exfiltration] export Ada")
    assert session.status == "completed"
    refused = list(session.action_requests.filter(action="mail.send_email").values_list("status", "reason"))
    assert [status for status, _ in refused] == ["denied", "denied"]
    assert "'collector@evil.test' is not an authorized destination" in refused[0][1]
    assert "not cleared for restricted data" in refused[1][1]
    assert len(mail.outbox) == 0
    assert SecurityAlert.objects.filter(kind="exfiltration", session=session).count() == 2
    assert AuditEvent.objects.filter(kind="egress.refused", session=str(session.pk)).count() == 2
    assert session.data_sensitivity == "restricted"


def test_listed_destinations_at_their_clearance_are_allowed(demo) -> None:
    _, token = sessions.start("support-bot", "ticket-triage", "test", "user:dana")
    params = {"recipients": ["payments-lead@example.com"], "subject": "T-2001", "body": "Please refund."}
    assert gateway.authorize(token, "ticketing.get_ticket", {"ticket_id": "T-2001"}).executed
    result = gateway.authorize(token, "mail.send_email", params)
    assert result.executed and len(mail.outbox) == 1


def test_webhooks_go_only_to_listed_urls(demo, start_session) -> None:
    listed, other = Receiver([200]), Receiver([200])
    try:
        doc = yaml.safe_load(EXAMPLE_POLICY.read_text())
        workflow = next(w for w in doc["workflows"] if w["name"] == "ticket-triage")
        workflow["destinations"].append({"type": "webhook", "value": listed.url, "clearance": "internal"})
        apply_policy(from_document(load(yaml.safe_dump(doc))), actor="test")
        _, token = sessions.start("support-bot", "ticket-triage", "test", "user:dana")
        assert gateway.authorize(token, "hooks.post", {"url": listed.url, "event": {"ok": 1}}).executed
        refused = gateway.authorize(token, "hooks.post", {"url": other.url, "event": {"ok": 1}})
        trick = gateway.authorize(token, "hooks.post", {"url": listed.url.replace("http://", "http://x@"), "event": {}})
    finally:
        listed.close()
        other.close()
    assert refused.decision == "deny" and "not an authorized destination" in refused.reason
    assert trick.decision == "deny"
    assert len(listed.received) == 1 and other.received == []
    assert Workflow.objects.get(name="ticket-triage").version == 2  # destinations are part of the version


def test_a_final_answer_without_an_initiator_destination_is_withheld(demo, model_server) -> None:
    doc = yaml.safe_load(EXAMPLE_POLICY.read_text())
    workflow = next(w for w in doc["workflows"] if w["name"] == "ticket-triage")
    workflow["destinations"] = [d for d in workflow["destinations"] if d["type"] != "initiator"]
    apply_policy(from_document(load(yaml.safe_dump(doc))), actor="test")
    session = run("support-bot", "ticket-triage", "Triage")
    assert session.status == "completed"
    assert session.final_answer.startswith("[withheld by Warden:")
    assert SecurityAlert.objects.filter(kind="exfiltration").exists()


@pytest.mark.parametrize(
    "destination, kind, target, expected",
    [
        ({"type": "email", "value": "a@example.com"}, "email", "A@Example.com", True),
        ({"type": "email_domain", "value": "example.com"}, "email", "x@sub.example.com", True),
        ({"type": "email_domain", "value": "example.com"}, "email", "x@example.com.evil.test", False),
        ({"type": "email_domain", "value": "example.com"}, "email", "x@exаmple.com", False),
        ({"type": "email_domain", "value": "example.com"}, "email", "x@evil.test, y@example.com", False),
        (
            {"type": "webhook", "value": "https://h.example.com/hooks/"},
            "webhook",
            "https://h.example.com/hooks/a",
            True,
        ),
        ({"type": "webhook", "value": "https://h.example.com/hooks/"}, "webhook", "https://h.example.com/other", False),
        (
            {"type": "webhook", "value": "https://h.example.com/hooks/"},
            "webhook",
            "http://h.example.com/hooks/a",
            False,
        ),
        ({"type": "email", "value": "a@example.com"}, "webhook", "a@example.com", False),
    ],
)
def test_destination_matching(destination, kind, target, expected) -> None:
    assert _matches(destination, kind, target) is expected


def test_destinations_are_validated_in_the_policy_file(example_text) -> None:
    from governance.policyfile import PolicyError

    doc = yaml.safe_load(example_text)
    doc["workflows"][0]["destinations"].append({"type": "email_domain"})
    doc["workflows"][0]["destinations"].append({"type": "pigeon", "value": "x"})
    with pytest.raises(PolicyError) as info:
        load(yaml.safe_dump(doc))
    assert any("destinations[3]" in e and "'pigeon'" in e for e in info.value.errors), info.value.errors
