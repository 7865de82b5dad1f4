"""Regressions for what a red team broke on the way: each test is one of its reproductions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from agents import gateway, sessions
from agents.models import ActionRequest, AgentSession, SecurityAlert
from approvals.services import DecisionRefused, action_request_decide
from audit.models import AuditEvent
from demo_systems.models import Customer
from governance.actors import Actor
from governance.models import TierAssignment
from governance.policyfile import from_database
from governance.services import policy_apply
from tests.agents.test_context import CANARIES, _warden_tables_text
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db
LIMIT = {"customer_id": "C-1001", "credit_limit": 77777}


def _pending_limit_change() -> ActionRequest:
    _session, token = sessions.start("support-bot", "account-maintenance", "test", "user:dana")
    result = gateway.authorize(token, "crm.update_credit_limit", LIMIT, tool_use_id="t1")
    assert result.decision == "pending_approval"
    return ActionRequest.objects.get(pk=result.action_request_id)


@pytest.mark.parametrize("change", ["tier 4", "outside the access map"])
def test_an_approval_never_carries_a_call_past_the_current_policy(demo, change) -> None:
    ar = _pending_limit_change()
    state = from_database()
    spec = state["workflows"]["account-maintenance"]
    if change == "tier 4":
        for tier in spec["tiers"]:
            if tier["action"] == "crm.update_credit_limit":
                tier["tier"], tier["quorum"] = 4, 1
    else:
        spec["tiers"] = [t for t in spec["tiers"] if t["action"] != "crm.update_credit_limit"]
    policy_apply(actor=Actor.cli("ops"), desired=state)
    before = Customer.objects.get(id="C-1001").credit_limit
    reviewers = [make_user("alice", "reviewer"), make_user("bob", "reviewer")]
    with pytest.raises(DecisionRefused, match="current policy"):
        for reviewer in reviewers:
            action_request_decide(
                action_request=ar, reviewer=reviewer, decision="approve", comment="", params_hash=ar.params_hash
            )
    assert Customer.objects.get(id="C-1001").credit_limit == before
    assert ActionRequest.objects.get(pk=ar.pk).status == "awaiting_approval"


def test_a_data_object_that_is_not_a_name_cannot_smuggle_a_value_into_storage(demo) -> None:
    from agents.api.auth import agent_key_create
    from governance.models import AgentIdentity
    from tests.api.conftest import bearer

    key = agent_key_create(AgentIdentity.objects.get(name="refund-bot"))
    started = bearer(APIClient(), key).post("/api/v1/sessions/", {"workflow": "refund-triage"}, format="json").json()
    token = started["token"]
    allowed = bearer(APIClient(), token).post(
        "/api/v1/authorize", {"action": "crm.get_customer", "params": {"customer_id": "C-1001"}}, format="json"
    )
    ssn = CANARIES["C-1002"]
    bearer(APIClient(), token).post(
        f"/api/v1/actions/{allowed.json()['action_request_id']}/result",
        {"outcome": "succeeded", "result": {"data_object": {"ssn": ssn}, "data": 1}},
        format="json",
    )
    assert ssn not in _warden_tables_text()


def test_a_call_checked_against_a_session_that_has_since_ended_is_refused_and_audited(demo) -> None:
    session, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    stale = AgentSession.objects.get(pk=session.pk)  # what the API verified a moment ago
    sessions.terminate(session, reason="tier 4 attempt", actor="system:gateway")
    result = gateway.authorize(
        token, "crm.get_customer", {"customer_id": "C-1001"}, tool_use_id="t9", execute=False, verified_session=stale
    )
    assert result.decision == "deny"
    denied = ActionRequest.objects.get(session=session, tool_use_id="t9")
    assert denied.status == "denied"
    assert not ActionRequest.objects.filter(session=session, status="allowed").exists()


def test_a_tier_3_call_racing_a_pause_is_refused_with_a_record(demo) -> None:
    session, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    stale = AgentSession.objects.get(pk=session.pk)
    refund = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "duplicate"}
    gateway.authorize(token, "crm.issue_refund", refund, tool_use_id="t1")
    second = gateway.authorize(
        token, "crm.issue_refund", {**refund, "amount": 300}, tool_use_id="t2", verified_session=stale
    )
    assert second.decision == "deny" and second.action_request_id
    assert AuditEvent.objects.filter(kind="action.denied", details__action_request=second.action_request_id).exists()


def test_a_paused_session_past_its_original_expiry_still_answers_and_tier_4_still_ends_it(demo) -> None:
    session, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    refund = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "duplicate"}
    gateway.authorize(token, "crm.issue_refund", refund, tool_use_id="t1")
    # Paused 16 minutes ago on a 15-minute session: it waits, its clock stopped at the pause.
    now = timezone.now()
    AgentSession.objects.filter(pk=session.pk).update(
        paused_at=now - timedelta(minutes=16), expires_at=now - timedelta(minutes=1)
    )
    from agents.models import SessionToken

    SessionToken.objects.filter(session=session).update(expires_at=now - timedelta(minutes=1))
    result = gateway.authorize(token, "crm.issue_refund", {**refund, "amount": 9999}, tool_use_id="t2")
    assert result.decision == "session_terminated"
    assert SecurityAlert.objects.filter(session=session, kind="tier4_attempt").exists()


def test_django_admin_cannot_change_a_person(demo) -> None:
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-long-enough-1")
    target = make_user("reviewer2", "reviewer")
    client = Client()
    client.force_login(admin)
    response = client.post(
        f"/admin/auth/user/{target.pk}/change/", {"username": "reviewer2", "email": "attacker@evil.test"}
    )
    assert response.status_code == 403
    client.post(  # the password view is gone: the admin redirects to the read-only page
        f"/admin/auth/user/{target.pk}/password/",
        {"password1": "new-pass-long-enough-9", "password2": "new-pass-long-enough-9"},
    )
    target.refresh_from_db()
    assert target.email == "reviewer2@example.com" and target.is_active
    assert target.check_password("pw-not-used-123")


def test_a_cli_run_under_the_reviewers_idp_subject_is_theirs(demo) -> None:
    from governance.actors import identities_of
    from governance.models import ExternalIdentity

    reviewer = make_user("oidc-5f1c0ffee", "reviewer")
    ExternalIdentity.objects.create(user=reviewer, issuer="http://idp", subject="root")
    assert "cli:root" in identities_of(reviewer)


def test_a_malformed_grant_field_is_a_clean_refusal(demo) -> None:
    import time

    from governance.oidc import SESSION_AUTH_CONTEXT

    client = Client()
    client.force_login(make_user("dave", "admin"))
    session = client.session
    session[SESSION_AUTH_CONTEXT] = {"amr": ["pwd", "mfa"], "acr": "", "auth_time": time.time()}
    session.save()
    response = client.post("/provisioning/workflows/ticket-triage/", {"grant:x": "on", "version": "1"})
    assert response.status_code < 500


def test_a_replay_is_audited(demo) -> None:
    session, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, tool_use_id="t1")
    gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, tool_use_id="t1")
    assert AuditEvent.objects.filter(session=str(session.pk), kind="action.replayed").count() == 1
    assert TierAssignment.objects.exists()


def test_a_revoked_credential_raises_an_alert_on_an_endpoint_that_takes_another_kind(demo) -> None:
    from agents.api.auth import agent_key_create
    from agents.models import AgentKey
    from governance.models import AgentIdentity
    from tests.api.conftest import bearer

    key = agent_key_create(AgentIdentity.objects.get(name="refund-bot"))
    started = bearer(APIClient(), key).post("/api/v1/sessions/", {"workflow": "refund-triage"}, format="json").json()
    token = started["token"]
    sessions.terminate(AgentSession.objects.get(pk=started["session_id"]), reason="done", actor="system:test")
    AgentKey.objects.update(revoked_at=timezone.now())
    before = SecurityAlert.objects.filter(kind="revoked_token").count()
    assert bearer(APIClient(), token).post(
        "/api/v1/sessions/", {"workflow": "refund-triage"}, format="json"
    ).status_code in (401, 403)
    assert bearer(APIClient(), key).post(
        "/api/v1/authorize", {"action": "x", "params": {}}, format="json"
    ).status_code in (401, 403)
    assert bearer(APIClient(), token).get("/api/v1/audit/events").status_code in (401, 403)
    assert SecurityAlert.objects.filter(kind="revoked_token").count() == before + 3


def test_calling_a_human_only_action_with_bad_parameters_is_still_a_tier_4_attempt(demo) -> None:
    session, token = sessions.start("support-bot", "account-maintenance", "test", "user:dana")
    result = gateway.authorize(token, "crm.delete_customer", {}, tool_use_id="t1")  # fails its schema
    assert result.decision == "session_terminated"
    session.refresh_from_db()
    assert session.status == "terminated"
    assert SecurityAlert.objects.filter(session=session, kind="tier4_attempt").exists()
