"""Session scopes narrow a session and never widen it, on every path (runner, gateway, API)."""

from __future__ import annotations

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from agents import gateway, sessions
from agents.api.auth import agent_key_create
from agents.models import ActionRequest, AgentSession
from agents.scopes import ScopeInvalid, compile_scope
from audit.models import AuditEvent
from demo_systems.models import Refund
from governance.models import AgentIdentity
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db
ACTIONS = frozenset({"crm.get_customer", "crm.issue_refund", "crm.add_note", "ticketing.get_ticket"})
SCOPE = {
    "actions": ["crm.get_customer", "crm.issue_refund"],
    "constraints": {
        "crm.issue_refund": [
            {"param": "customer_id", "op": "eq", "value": "C-1002"},
            {"param": "amount", "op": "lte", "value": 300},
        ]
    },
}
REFUND = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "duplicate"}


@pytest.mark.parametrize(
    "raw, message",
    [
        ([], "must be a mapping"),
        ({"payees": []}, "unknown keys"),
        ({"actions": ["crm.delete_customer"]}, "not actions of this workflow"),
        ({"actions": []}, "non-empty list"),
        ({"constraints": {"crm.issue_refund": [{"param": "amount", "op": "matches", "value": "x"}]}}, "use one of"),
        ({"constraints": {"crm.issue_refund": [{"param": "amount", "op": "lte", "value": "a lot"}]}}, "needs a number"),
        ({"actions": ["crm.get_customer"], "constraints": {"crm.issue_refund": []}}, "not an action of this session"),
    ],
)
def test_a_scope_that_cannot_be_used_is_refused_with_its_place(raw, message) -> None:
    with pytest.raises(ScopeInvalid, match=message):
        compile_scope(raw, workflow_actions=ACTIONS)


def test_a_scoped_session_refuses_what_is_outside_and_decides_the_rest_as_the_workflow_does(demo) -> None:
    session, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana", scope=SCOPE)
    started = AuditEvent.objects.get(kind="session.started", session=str(session.pk))
    assert started.details["session_scope"] == SCOPE
    inside = gateway.authorize(token, "crm.issue_refund", REFUND, tool_use_id="t1")
    assert (inside.decision, inside.tier) == ("pending_approval", 3)  # the workflow still decides
    session, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana", scope=SCOPE)
    for params, tool_use_id in (
        ({**REFUND, "customer_id": "C-1003"}, "a"),  # another payee
        ({**REFUND, "amount": 301}, "b"),  # over the cap
        ({"customer_id": "C-1002", "currency": "EUR", "reason": "x"}, "c"),  # no amount: the schema refuses it first
    ):
        result = gateway.authorize(token, "crm.issue_refund", params, tool_use_id=tool_use_id)
        assert result.decision == "deny", params
    assert gateway.authorize(
        token, "crm.add_note", {"customer_id": "C-1002", "body": "x"}, tool_use_id="d"
    ).decision == ("deny")
    assert AuditEvent.objects.filter(session=str(session.pk), kind="action.out_of_scope").count() == 3
    assert not Refund.objects.exists()


def test_a_scope_never_lets_tier_4_through_unpunished(demo) -> None:
    session, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana", scope=SCOPE)
    result = gateway.authorize(token, "crm.issue_refund", {**REFUND, "amount": 9999}, tool_use_id="t1")
    assert result.decision == "session_terminated"


def test_the_api_takes_a_scope_and_refuses_a_bad_one(demo) -> None:
    key = agent_key_create(AgentIdentity.objects.get(name="refund-bot"))
    bad = bearer(APIClient(), key).post(
        "/api/v1/sessions/", {"workflow": "refund-triage", "scope": {"actions": ["nope"]}}, format="json"
    )
    assert bad.status_code == 400 and "not actions of this workflow" in str(bad.json())
    started = (
        bearer(APIClient(), key)
        .post("/api/v1/sessions/", {"workflow": "refund-triage", "scope": SCOPE}, format="json")
        .json()
    )
    steered = bearer(APIClient(), started["token"]).post(
        "/api/v1/authorize",
        {"action": "crm.issue_refund", "params": {**REFUND, "customer_id": "C-1003"}, "tool_use_id": "t1"},
        format="json",
    )
    assert steered.json()["decision"] == "deny" and "scope" in steered.json()["reason"]


def test_the_runner_is_stopped_by_the_scope_when_the_model_is_steered(demo, model_server) -> None:
    from agents import runner
    from agents.services import session_queue_run

    session = session_queue_run(
        agent="refund-bot",
        workflow="refund-triage",
        input="[script: steered-refund] Handle ticket T-2002",
        trigger="test",
        initiated_by="user:dana",
        scope={"constraints": {"crm.issue_refund": [{"param": "customer_id", "op": "eq", "value": "C-1002"}]}},
    )
    runner.claim(session.pk, from_state=AgentSession.RunState.QUEUED)
    runner.run(session.pk)
    refused = ActionRequest.objects.get(session=session, action="crm.issue_refund")
    assert refused.status == "denied" and "scope" in refused.reason
    assert not Refund.objects.filter(customer_id="C-1003").exists()


calls = st.sampled_from(
    [
        ("crm.get_customer", {"customer_id": "C-1001"}),
        ("crm.issue_refund", REFUND),
        ("crm.issue_refund", {**REFUND, "amount": 50}),
        ("crm.issue_refund", {**REFUND, "customer_id": "C-1003", "amount": 50}),
        ("crm.issue_refund", {**REFUND, "amount": 9999}),
        ("crm.add_note", {"customer_id": "C-1002", "body": "x"}),
        ("crm.delete_customer", {"customer_id": "C-1002"}),
        ("crm.get_customer", {"customer_id": 7}),
    ]
)
constraint = st.fixed_dictionaries(
    {
        "param": st.sampled_from(["customer_id", "amount", "currency", "body"]),
        "op": st.sampled_from(["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte"]),
    }
).flatmap(
    lambda c: st.just(
        {
            **c,
            "value": (
                ["C-1002", "C-1003"]
                if c["op"] in ("in", "not_in")
                else 100
                if c["op"] in ("gt", "gte", "lt", "lte")
                else "C-1002"
            ),
        }
    )
)
scopes = st.fixed_dictionaries(
    {},
    optional={
        "actions": st.lists(
            st.sampled_from(["crm.get_customer", "crm.issue_refund", "crm.add_note"]), min_size=1, unique=True
        ),
        "constraints": st.dictionaries(
            st.sampled_from(["crm.issue_refund", "crm.get_customer"]), st.lists(constraint, max_size=3), max_size=2
        ),
    },
).filter(lambda s: "actions" not in s or set(s.get("constraints", {})) <= set(s["actions"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scope=scopes, call=calls)
def test_a_scope_never_allows_what_its_workflow_refuses(demo, scope, call) -> None:
    action, params = call
    with transaction.atomic():
        _s, plain = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
        _t, scoped = sessions.start("refund-bot", "refund-triage", "test", "user:dana", scope=scope)
        unscoped = gateway.authorize(plain, action, params, tool_use_id="p", execute=False)
        narrowed = gateway.authorize(scoped, action, params, tool_use_id="s", execute=False)
        assert narrowed.decision in (unscoped.decision, "deny")
        if unscoped.decision in ("deny", "session_terminated"):
            assert narrowed.decision == unscoped.decision
        if narrowed.decision not in ("deny", "session_terminated"):
            assert narrowed.tier == unscoped.tier  # a scope never changes a tier, it only refuses
        transaction.set_rollback(True)
