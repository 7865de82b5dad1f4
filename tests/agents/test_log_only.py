"""A workflow in `mode: log_only` is decided and audited as it would be, but nothing below tier 4
is refused or queued: the call proceeds (as tier 1 would), with the would-be outcome in its audit
event and its reason. Tier 4 always refuses. Checked in-process (the runner's path) and through
the decision API."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from agents import gateway, sessions
from agents.api.auth import agent_key_create
from agents.models import ActionRequest
from audit.models import AuditEvent
from demo_systems.models import Refund
from governance.models import AgentIdentity, Workflow
from governance.policyfile import apply_policy, export_yaml, from_database, from_document, load
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent
REFUNDS = (ROOT / "examples" / "policy-refunds.yaml").read_text()
REFUND = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "duplicate"}


@pytest.fixture
def trial(demo) -> Workflow:
    desired = from_document(load(REFUNDS, current=from_database()))
    apply_policy(desired, actor="test:setup", package="refunds")
    return Workflow.objects.get(name="ticket-refund-trial")


def start(**kw):
    return sessions.start("ticket-refund-bot", "ticket-refund-trial", "test", "user:dana", "trial", **kw)


def test_a_tier_3_call_proceeds_with_what_it_would_have_been_in_the_audit_trail(trial) -> None:
    session, token = start()
    result = gateway.authorize(token, "crm.issue_refund", REFUND, tool_use_id="t1")
    assert (result.decision, result.tier, result.status) == ("allow", 1, "succeeded")
    assert result.reason.startswith("log only: would have been queued for approval (tier 3")
    assert Refund.objects.filter(customer_id="C-1002").exists()
    event = AuditEvent.objects.get(kind="action.executing", session=str(session.pk))
    assert event.details["log_only"]["outcome"] == "pending_approval" and event.details["log_only"]["tier"] == 3
    assert not ActionRequest.objects.filter(status="awaiting_approval").exists()


def test_tier_4_always_refuses_and_ends_the_session(trial) -> None:
    session, token = start()
    result = gateway.authorize(token, "crm.issue_refund", {**REFUND, "amount": 9999}, tool_use_id="t1")
    assert result.decision == "session_terminated"
    session.refresh_from_db()
    assert session.status == "terminated" and not Refund.objects.exists()


def test_refusals_below_tier_4_proceed_but_an_unknown_action_cannot(trial) -> None:
    _session, token = start(
        scope={"constraints": {"crm.issue_refund": [{"param": "amount", "op": "lte", "value": 10}]}}
    )
    outside = gateway.authorize(token, "crm.issue_refund", REFUND, tool_use_id="a", execute=False)
    assert outside.decision == "allow" and "would have been refused (outside the session's scope" in outside.reason
    broken = gateway.authorize(token, "crm.issue_refund", {"customer_id": "C-1002"}, tool_use_id="b", execute=False)
    assert broken.decision == "allow" and "would have been refused (parameters do not match" in broken.reason
    unknown = gateway.authorize(token, "crm.delete_customer", {"customer_id": "C-1"}, tool_use_id="c", execute=False)
    assert unknown.decision == "deny"  # nothing to execute: not an action of the workflow


def test_the_api_answers_allow_with_the_would_be_outcome(trial) -> None:
    key = agent_key_create(AgentIdentity.objects.get(name="ticket-refund-bot"))
    started = bearer(APIClient(), key).post(
        "/api/v1/sessions/", {"workflow": "ticket-refund-trial", "input": "trial"}, format="json"
    )
    token = started.json()["token"]
    answer = (
        bearer(APIClient(), token)
        .post("/api/v1/authorize", {"action": "crm.issue_refund", "params": REFUND, "tool_use_id": "t1"}, format="json")
        .json()
    )
    assert (answer["decision"], answer["tier"]) == ("allow", 1)
    assert "would have been queued for approval" in answer["reason"]
    human_only = (
        bearer(APIClient(), token)
        .post(
            "/api/v1/authorize",
            {"action": "crm.issue_refund", "params": {**REFUND, "amount": 9999}, "tool_use_id": "t2"},
            format="json",
        )
        .json()
    )
    assert human_only["decision"] == "session_terminated"


calls = st.sampled_from(
    [
        ("crm.issue_refund", REFUND),
        ("crm.issue_refund", {**REFUND, "amount": 9999}),
        ("crm.issue_refund", {**REFUND, "amount": "lots"}),
        ("crm.issue_refund", {**REFUND, "customer_id": "C-1003"}),
        ("ticketing.get_ticket", {"ticket_id": "T-2002"}),
        ("ticketing.get_ticket", {"ticket_id": 7}),
        ("crm.get_customer", {"customer_id": "C-1002"}),
    ]
)
SCOPE = {"constraints": {"crm.issue_refund": [{"param": "customer_id", "op": "eq", "value": "C-1002"}]}}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=calls)
def test_log_only_records_exactly_what_enforce_decides(trial, call) -> None:
    action, params = call
    with transaction.atomic():
        _s, logged_token = start(scope=SCOPE)
        logged = gateway.authorize(logged_token, action, params, tool_use_id="l", execute=False)
        trial.mode = "enforce"
        trial.save()
        _s, enforced_token = start(scope=SCOPE)
        enforced = gateway.authorize(enforced_token, action, params, tool_use_id="e", execute=False)
        if enforced.decision in ("deny", "pending_approval") and logged.decision != "deny":
            # Refused or queued under enforce: proceeds under log_only, saying what it would have been.
            assert logged.decision == "allow" and logged.tier == 1
            verdict = "refused" if enforced.decision == "deny" else "queued for approval"
            assert logged.reason == f"log only: would have been {verdict} ({enforced.reason})"
        else:
            # Allowed, tier 4, or nothing to execute: log_only changes nothing.
            assert (logged.decision, logged.tier, logged.reason) == (enforced.decision, enforced.tier, enforced.reason)
            if logged.decision == "deny":
                assert action == "crm.get_customer"
        transaction.set_rollback(True)


def test_the_mode_round_trips_through_the_policy_file(trial) -> None:
    exported = yaml.safe_load(export_yaml("refunds"))
    assert next(w for w in exported["workflows"] if w["name"] == "ticket-refund-trial")["mode"] == "log_only"
