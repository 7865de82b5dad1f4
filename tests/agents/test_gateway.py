"""agents.gateway.authorize per tier, with the audit events each leaves."""

from __future__ import annotations

import pytest
from django.core import mail

import audit
from agents import gateway, sessions, signals
from agents.models import ActionRequest, SecurityAlert
from audit.chain import verify
from audit.models import AuditEvent
from demo_systems.models import Customer, Note, Refund

pytestmark = pytest.mark.django_db

REFUND = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "duplicate"}
SMALL_REFUND = {**REFUND, "amount": 40}


def test_tier_1_executes_and_returns_the_filtered_result(start_session, kinds) -> None:
    session, token = start_session()
    kinds.mark()
    result = gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, tool_use_id="t1")
    assert (result.decision, result.tier, result.status) == ("allow", 1, "succeeded")
    data = result.result["data"]
    assert data["name"] == "Ada Lovelace"
    assert "ssn" not in data  # pii.ssn: never
    assert data["email"] == "a***@example.net"  # pii.email: redacted
    assert data["credit_limit"] == "<number>"  # finance.credit_limit: summarized
    assert kinds() == ["action.executing", "action.executed"]
    executed = AuditEvent.objects.get(kind="action.executed")
    assert executed.details["fields"] == ["credit_limit", "email", "id", "name", "status"]
    assert "Ada" not in str(executed.details)


def test_tier_2_executes_and_notifies(start_session, kinds, django_capture_on_commit_callbacks) -> None:
    session, token = start_session()
    kinds.mark()
    notified = []
    signals.action_notified.connect(
        lambda action_request, **_: notified.append(action_request.action), weak=False, dispatch_uid="test-notified"
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = gateway.authorize(token, "crm.add_note", {"customer_id": "C-1001", "body": "hi"}, tool_use_id="t2")
    finally:
        signals.action_notified.disconnect(dispatch_uid="test-notified")
    assert (result.decision, result.tier, result.status) == ("allow_notified", 2, "succeeded")
    assert Note.objects.filter(customer_id="C-1001").count() == 1
    assert notified == ["crm.add_note"]
    assert kinds() == ["action.executing", "action.executed"]


def test_tier_2_rereads_the_agent_from_the_database(start_session) -> None:
    session, token = start_session()
    sessions.verify_token(token)
    from governance.models import AgentIdentity

    # Suspended between the token check and execution (simulated by suspending first and
    # checking that tier 2 reads the row again, not a cached copy of it).
    AgentIdentity.objects.filter(name="refund-bot").update(status="suspended")
    result = gateway.authorize(token, "crm.add_note", {"customer_id": "C-1001", "body": "hi"})
    assert result.decision == "deny" and not Note.objects.exists()


def test_tier_3_waits_for_approval_and_pauses_the_session(start_session, kinds) -> None:
    session, token = start_session()
    kinds.mark()
    result = gateway.authorize(token, "crm.issue_refund", REFUND, tool_use_id="t3")
    assert (result.decision, result.tier, result.status) == ("pending_approval", 3, "awaiting_approval")
    ar = ActionRequest.objects.get(pk=result.action_request_id)
    assert ar.params_hash and ar.expires_at and ar.quorum == 1 and ar.sealed_params
    assert "amount gt 100" in ar.reason
    session.refresh_from_db()
    assert session.status == "awaiting_approval"
    assert not Refund.objects.exists()
    assert kinds() == ["action.awaiting_approval", "session.paused"]
    # A paused session takes no further calls.
    assert gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}).decision == "deny"


def test_release_executes_once_and_resumes(start_session, kinds) -> None:
    session, token = start_session()
    kinds.mark()
    ar = ActionRequest.objects.get(pk=gateway.authorize(token, "crm.issue_refund", REFUND).action_request_id)
    first = gateway.release(ar)
    second = gateway.release(ar)
    assert first.status == second.status == "succeeded"
    assert Refund.objects.count() == 1
    session.refresh_from_db()
    assert session.status == "active"
    ar.refresh_from_db()
    assert ar.sealed_params == ""
    assert kinds() == [
        "action.awaiting_approval",
        "session.paused",
        "action.released",
        "session.resumed",
        "action.executing",
        "action.executed",
    ]


def test_release_refuses_changed_parameters(start_session) -> None:
    from agents import context
    from governance import crypto

    session, token = start_session()
    ar = ActionRequest.objects.get(pk=gateway.authorize(token, "crm.issue_refund", REFUND).action_request_id)
    ActionRequest.objects.filter(pk=ar.pk).update(
        sealed_params=crypto.encrypt(context.json_text({**REFUND, "amount": 4999}))
    )
    result = gateway.release(ar)
    assert result.decision == "deny" and "differ" in result.reason
    assert not Refund.objects.exists()
    assert AuditEvent.objects.filter(kind="action.release_refused").count() == 1


def test_release_refuses_an_expired_request_and_a_suspended_agent(start_session) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from governance.models import AgentIdentity

    session, token = start_session()
    ar = ActionRequest.objects.get(pk=gateway.authorize(token, "crm.issue_refund", REFUND).action_request_id)
    AgentIdentity.objects.filter(name="refund-bot").update(status="suspended")
    assert "suspended" in gateway.release(ar).reason
    AgentIdentity.objects.filter(name="refund-bot").update(status="active")
    ActionRequest.objects.filter(pk=ar.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert "expired" in gateway.release(ar).reason
    assert not Refund.objects.exists()


def test_tier_4_refuses_terminates_and_alerts(start_session, kinds) -> None:
    session, token = start_session("support-bot", "account-maintenance")
    kinds.mark()
    result = gateway.authorize(token, "crm.delete_customer", {"customer_id": "C-1001"}, tool_use_id="t4")
    assert (result.decision, result.tier, result.status) == ("session_terminated", 4, "refused")
    assert Customer.objects.filter(id="C-1001").exists()
    session.refresh_from_db()
    assert (session.status, session.termination_reason, session.termination_verified) == (
        "terminated",
        "tier 4 attempt",
        True,
    )
    alert = SecurityAlert.objects.get()
    assert alert.kind == "tier4_attempt" and alert.session == session
    assert kinds() == ["action.refused", "alert.raised", "session.terminated", "session.termination_verified"]
    assert gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}).decision == "deny"


@pytest.mark.parametrize(
    "action, params, reason",
    [
        ("crm.delete_customer", {"customer_id": "C-1"}, "not in the access map"),
        ("crm.refnd", {}, "unknown action"),
        ("crm\u200b.get_customer", {"customer_id": "C-1001"}, "unknown action"),
        ("crm.get_customer", {"customer_id": "'; DROP TABLE demo_systems_customer; --"}, "schema"),
        ("crm.get_customer", "C-1001", "JSON object"),
        ("crm.issue_refund", {**REFUND, "amount": -5}, "schema"),
        (None, {}, "unknown action"),
    ],
)
def test_anything_outside_the_map_or_schema_is_refused_and_audited(start_session, action, params, reason) -> None:
    session, token = start_session()
    result = gateway.authorize(token, action, params)
    assert result.decision == "deny" and reason in result.reason
    assert AuditEvent.objects.filter(kind="action.denied").count() == 1
    assert Customer.objects.count() == 3 and not Refund.objects.exists()
    session.refresh_from_db()
    assert session.status == "active"


def test_a_forged_or_revoked_token_is_refused(start_session) -> None:
    session, token = start_session()
    forged = gateway.authorize("wst_" + "x" * 43, "crm.get_customer", {"customer_id": "C-1001"})
    assert forged.decision == "deny" and "unknown" in forged.reason
    sessions.terminate(session, reason="test", actor="user:bob")
    revoked = gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"})
    assert revoked.decision == "deny" and "revoked" in revoked.reason
    assert SecurityAlert.objects.filter(kind="revoked_token").count() == 1
    assert AuditEvent.objects.filter(kind="action.denied").count() == 2


def test_a_replayed_tool_use_id_is_not_executed_twice(start_session) -> None:
    session, token = start_session()
    params = {"customer_id": "C-1001", "body": "once"}
    first = gateway.authorize(token, "crm.add_note", params, tool_use_id="toolu_same")
    again = gateway.authorize(token, "crm.add_note", params, tool_use_id="toolu_same")
    assert first.action_request_id == again.action_request_id
    assert Note.objects.count() == 1
    assert ActionRequest.objects.count() == 1


def test_no_audit_record_means_no_action(start_session, monkeypatch) -> None:
    session, token = start_session()
    real_record = audit.record

    def failing(kind, *args, **kwargs):
        if kind == "action.executing":
            raise RuntimeError("audit store unavailable")
        return real_record(kind, *args, **kwargs)

    monkeypatch.setattr(audit, "record", failing)
    with pytest.raises(RuntimeError):
        gateway.authorize(token, "crm.add_note", {"customer_id": "C-1001", "body": "x"})
    assert not Note.objects.exists()
    assert not ActionRequest.objects.exists()  # rolled back with its audit event


def test_a_connector_failure_hands_the_session_to_a_person(start_session) -> None:
    session, token = start_session()
    result = gateway.authorize(token, "crm.add_note", {"customer_id": "C-9999", "body": "x"})
    assert result.status == "failed" and "no such customer" in result.error
    session.refresh_from_db()
    assert session.status == "handed_off" and session.termination_verified
    handoff = session.handoffs.get()
    assert "connector error" in handoff.trigger
    assert handoff.context["failed_action"]["action"] == "crm.add_note"


def test_a_wrong_credential_is_a_connector_failure_not_a_crash(start_session) -> None:
    from governance.models import ServiceCredential

    cred = ServiceCredential.objects.get(name="crm-api")
    cred.set_secret("wrong-key")
    cred.save()
    session, token = start_session()
    result = gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"})
    assert result.status == "failed" and "refused" in result.error
    assert "wrong-key" not in str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_the_chain_verifies_after_all_of_it(start_session) -> None:
    session, token = start_session()
    gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"})
    gateway.authorize(token, "crm.issue_refund", REFUND)
    assert verify().ok
    assert len(mail.outbox) == 0
