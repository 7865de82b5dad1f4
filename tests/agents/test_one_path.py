"""Regressions for "one path per promise": each promise holds on the in-process path and
through the decision API alike (issue "One path per promise", the bullets under "Why")."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from agents import gateway, signals
from agents.api.auth import agent_key_create
from agents.models import ActionRequest, AgentSession, SecurityAlert
from approvals.services import action_request_decide
from audit.models import AuditEvent
from demo_systems.models import Refund
from governance.models import AgentIdentity, TierAssignment
from tests.api.conftest import bearer
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db
REFUND = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "duplicate"}
BIG_REFUND = {**REFUND, "amount": 9999}  # over 5000: tier 4 in the example policy


class InProcess:
    """Drives the gateway as the built-in runner does."""

    name = "in-process"

    def __init__(self, start_session: Any) -> None:
        self.start_session = start_session

    def start(self, agent: str = "refund-bot", workflow: str = "refund-triage") -> tuple[AgentSession, str]:
        return self.start_session(agent, workflow)

    def authorize(self, token: str, action: str, params: Any, tool_use_id: str = "") -> dict[str, Any]:
        result = gateway.authorize(token, action, params, tool_use_id=tool_use_id)
        return {"decision": result.decision, "tier": result.tier, "action_request_id": result.action_request_id}


class OverHttp:
    """Drives the decision API as an external runtime does."""

    name = "api"

    def start(self, agent: str = "refund-bot", workflow: str = "refund-triage") -> tuple[AgentSession, str]:
        key = agent_key_create(AgentIdentity.objects.get(name=agent))
        response = bearer(APIClient(), key).post(
            "/api/v1/sessions/", {"workflow": workflow, "initiated_by": "user:dana"}, format="json"
        )
        assert response.status_code == 201, response.content
        body = response.json()
        return AgentSession.objects.get(pk=body["session_id"]), body["token"]

    def authorize(self, token: str, action: str, params: Any, tool_use_id: str = "") -> dict[str, Any]:
        response = bearer(APIClient(), token).post(
            "/api/v1/authorize", {"action": action, "params": params, "tool_use_id": tool_use_id}, format="json"
        )
        assert response.status_code == 200, response.content
        return response.json()


@pytest.fixture(params=["in-process", "api"])
def path(request, start_session) -> InProcess | OverHttp:
    return InProcess(start_session) if request.param == "in-process" else OverHttp()


def alerts(session: AgentSession, kind: str) -> int:
    return SecurityAlert.objects.filter(session=session, kind=kind).count()


def test_a_reused_tool_use_id_with_another_action_is_refused_audited_and_alerted(path) -> None:
    session, token = path.start()
    first = path.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, "toolu_01")
    assert (first["decision"], first["tier"]) == ("allow", 1)
    again = path.authorize(token, "crm.list_refunds", {"customer_id": "C-1001"}, "toolu_01")
    assert again["decision"] == "deny"
    assert again["action_request_id"] != first["action_request_id"]
    assert AuditEvent.objects.filter(session=str(session.pk), kind="action.replay_mismatch").count() == 1
    assert alerts(session, SecurityAlert.Kind.ANOMALY) == 1


def test_a_reused_tool_use_id_for_a_tier_4_call_ends_the_session(path) -> None:
    session, token = path.start()
    path.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, "toolu_01")
    again = path.authorize(token, "crm.issue_refund", BIG_REFUND, "toolu_01")
    assert again["decision"] == "session_terminated"
    session.refresh_from_db()
    assert session.status == "terminated"
    assert alerts(session, SecurityAlert.Kind.TIER4_ATTEMPT) == 1
    assert AuditEvent.objects.filter(session=str(session.pk), kind="action.refused").count() == 1


def test_the_same_call_under_the_same_tool_use_id_is_an_idempotent_replay(path) -> None:
    session, token = path.start()
    first = path.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, "toolu_01")
    again = path.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, "toolu_01")
    assert again["action_request_id"] == first["action_request_id"]
    assert ActionRequest.objects.filter(session=session).count() == 1
    assert alerts(session, SecurityAlert.Kind.ANOMALY) == 0


def test_a_tier_3_replay_under_another_action_does_not_inherit_the_pending_decision(path) -> None:
    session, token = path.start()
    pending = path.authorize(token, "crm.issue_refund", REFUND, "toolu_01")
    assert pending["decision"] == "pending_approval"
    again = path.authorize(token, "crm.issue_refund", {**REFUND, "amount": 300}, "toolu_01")
    assert again["decision"] == "deny"
    assert again["action_request_id"] != pending["action_request_id"]


def test_tier_4_wins_over_an_unlisted_destination(path, start_session) -> None:
    """A human-only call that also names a destination outside the workflow ends the session."""
    assignment = TierAssignment.objects.get(workflow__name="ticket-triage", action_type__name="mail.send_email")
    assignment.conditions = [*assignment.conditions, {"param": "subject", "op": "matches", "value": "WIRE", "tier": 4}]
    assignment.save()
    gateway._SNAPSHOTS.clear()
    session, token = path.start("support-bot", "ticket-triage")
    mail = {"recipients": ["boss@attacker.example"], "subject": "WIRE now", "body": "pay"}
    outcome = path.authorize(token, "mail.send_email", mail, "t1")
    assert outcome["decision"] == "session_terminated"
    session.refresh_from_db()
    assert session.status == "terminated"
    assert alerts(session, SecurityAlert.Kind.TIER4_ATTEMPT) == 1


def test_a_tier_4_attempt_while_the_session_waits_for_a_reviewer_ends_it(path) -> None:
    session, token = path.start()
    assert path.authorize(token, "crm.issue_refund", REFUND, "t1")["decision"] == "pending_approval"
    outcome = path.authorize(token, "crm.issue_refund", BIG_REFUND, "t2")
    assert outcome["decision"] == "session_terminated"
    session.refresh_from_db()
    assert session.status == "terminated"
    assert alerts(session, SecurityAlert.Kind.TIER4_ATTEMPT) == 1
    refused = ActionRequest.objects.get(session=session, tool_use_id="t2")
    assert refused.status == "refused"
    assert AuditEvent.objects.filter(session=str(session.pk), kind="action.refused").exists()
    assert ActionRequest.objects.get(session=session, tool_use_id="t1").status == "cancelled"


def test_other_calls_while_paused_are_decided_refused_and_audited(path) -> None:
    session, token = path.start()
    path.authorize(token, "crm.issue_refund", REFUND, "t1")
    outcome = path.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, "t2")
    assert outcome["decision"] == "deny"
    denied = ActionRequest.objects.get(session=session, tool_use_id="t2")
    assert denied.status == "denied" and "waits for a reviewer" in denied.reason
    session.refresh_from_db()
    assert session.status == "awaiting_approval"


def test_tier_2_notifies_the_owner_on_every_path(path, django_capture_on_commit_callbacks) -> None:
    session, token = path.start()
    notified: list[str] = []
    signals.action_notified.connect(
        lambda action_request, **_: notified.append(action_request.action), weak=False, dispatch_uid="one-path"
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            outcome = path.authorize(token, "crm.add_note", {"customer_id": "C-1001", "body": "hi"}, "t1")
    finally:
        signals.action_notified.disconnect(dispatch_uid="one-path")
    assert outcome["decision"] == "allow_notified"
    assert notified == ["crm.add_note"]


def test_an_unreported_restricted_read_still_limits_where_data_may_go(path) -> None:
    """The session holds restricted data from the moment the read is allowed, reported or not."""
    session, token = path.start("support-bot", "ticket-triage")
    read = path.authorize(token, "crm.search_customers", {"query": "Ada"}, "t1")
    assert read["decision"] == "allow"
    session.refresh_from_db()
    assert session.data_sensitivity == "restricted"
    mail = {"recipients": ["colleague@example.com"], "subject": "fyi", "body": "see the customer"}
    outcome = path.authorize(token, "mail.send_email", mail, "t2")
    assert outcome["decision"] == "deny"
    assert "destination refused" in ActionRequest.objects.get(session=session, tool_use_id="t2").reason


def test_approval_through_the_reviewer_service_writes_action_released(start_session) -> None:
    session, token = start_session(initiated_by="user:dana")
    result = gateway.authorize(token, "crm.issue_refund", REFUND, tool_use_id="t1")
    ar = ActionRequest.objects.get(pk=result.action_request_id)
    alice = make_user("alice", "reviewer")
    action_request_decide(action_request=ar, reviewer=alice, decision="approve", comment="", params_hash=ar.params_hash)
    kinds = list(AuditEvent.objects.filter(session=str(session.pk)).order_by("id").values_list("kind", flat=True))
    assert kinds.count("action.released") == 1
    assert kinds.index("approval.decided") < kinds.index("action.released") < kinds.index("action.executed")
    assert Refund.objects.count() == 1
    released = AuditEvent.objects.get(session=str(session.pk), kind="action.released")
    assert released.actor == "user:alice" or "alice" in released.actor


def test_the_long_poll_returns_as_soon_as_a_reviewer_decided(demo, monkeypatch) -> None:
    """`approved` is an answer: the wait loop must not keep polling while the status is approved."""
    _session, token = OverHttp().start()
    pending = bearer(APIClient(), token).post(
        "/api/v1/authorize", {"action": "crm.issue_refund", "params": REFUND, "tool_use_id": "t1"}, format="json"
    )
    ar = ActionRequest.objects.get(pk=pending.json()["action_request_id"])
    action_request_decide(
        action_request=ar,
        reviewer=make_user("alice", "reviewer"),
        decision="approve",
        comment="",
        params_hash=ar.params_hash,
    )
    polls: list[float] = []
    monkeypatch.setattr("agents.api.views.time.sleep", lambda seconds: polls.append(seconds))
    response = bearer(APIClient(), token).get(f"/api/v1/actions/{ar.pk}?wait=25")
    assert response.json()["status"] == "approved"
    assert polls == []
