"""Provisioning needs the admin role to read and an MFA step-up to change; every change is audited."""

from __future__ import annotations

import html
import re
import time

import pytest
from django.test import Client

from agents import sessions
from audit.models import AuditEvent
from governance.models import AccessReview, AgentIdentity, ContextRule, ServiceCredential, Workflow
from governance.oidc import SESSION_AUTH_CONTEXT
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db


def admin_client(*, mfa: bool, age: int = 0) -> Client:
    from django.contrib.auth import get_user_model

    client = Client()
    user = get_user_model().objects.filter(username="dave").first() or make_user("dave", "admin")
    client.force_login(user)
    session = client.session
    session[SESSION_AUTH_CONTEXT] = {
        "method": "oidc",
        "amr": ["pwd", "mfa"] if mfa else ["pwd"],
        "acr": "",
        "auth_time": int(time.time()) - age,
    }
    session.save()
    return client


def test_a_change_without_a_recent_mfa_login_goes_to_the_idp(demo, settings) -> None:
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_OP_AUTHORIZATION_ENDPOINT = "warden", "http://idp.test/auth"
    client = admin_client(mfa=False)
    assert client.get("/provisioning/").status_code == 200  # reading is fine
    response = client.post("/provisioning/agents/refund-bot/suspended/")
    assert response.status_code == 302 and response["Location"].startswith("/oidc/authenticate/?stepup=1")
    assert AgentIdentity.objects.get(name="refund-bot").status == "active"
    stale = admin_client(mfa=True, age=3600)
    assert stale.post("/provisioning/agents/refund-bot/suspended/").status_code == 302
    assert AgentIdentity.objects.get(name="refund-bot").status == "active"


def test_the_idp_is_asked_for_a_fresh_mfa_login(demo, settings) -> None:
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_OP_AUTHORIZATION_ENDPOINT = "warden", "http://idp.test/auth"
    settings.OIDC_OP_TOKEN_ENDPOINT = "http://idp.test/token"
    settings.WARDEN_STEPUP_ACR = "urn:warden:mfa"
    response = Client().get("/oidc/authenticate/", {"stepup": 1, "next": "/provisioning/"})
    location = response["Location"]
    assert "prompt=login" in location and "acr_values=urn%3Awarden%3Amfa" in location and "max_age=0" in location


def test_agent_lifecycle_with_mfa_is_audited_with_the_auth_context(demo) -> None:
    client = admin_client(mfa=True)
    session, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    client.post(
        "/provisioning/agents/",
        {"name": "audit-bot", "owner": "ops@example.com", "workflows": ["refund-triage"], "recertify_by": "2027-01-31"},
    )
    assert AgentIdentity.objects.get(name="audit-bot").workflows.get().name == "refund-triage"
    client.post("/provisioning/agents/refund-bot/suspended/")
    session.refresh_from_db()
    assert session.status == "terminated" and session.termination_verified
    client.post("/provisioning/agents/refund-bot/active/")
    assert AgentIdentity.objects.get(name="refund-bot").status == "active"
    refused = client.post("/provisioning/agents/refund-bot/deprovisioned/", follow=True)  # no reason
    assert "give a reason" in refused.content.decode()
    assert AgentIdentity.objects.get(name="refund-bot").status == "active"
    client.post("/provisioning/agents/refund-bot/deprovisioned/", {"reason": "replaced", "confirm": "on"})
    response = client.post("/provisioning/agents/refund-bot/active/", follow=True)
    assert "cannot be reactivated" in response.content.decode()
    created = AuditEvent.objects.get(kind="provisioning.agent_created")
    assert created.actor == "user:dave" and created.details["auth"]["amr"] == ["pwd", "mfa"]
    assert AuditEvent.objects.filter(kind="provisioning.agent_suspended").count() == 1


def test_bad_input_keeps_the_page_and_says_what_is_wrong(demo) -> None:
    client = admin_client(mfa=True)
    response = client.post("/provisioning/agents/", {"name": "Bad Name!", "owner": "ops@example.com"})
    text = html.unescape(response.content.decode())
    assert response.status_code == 400 and "name: 'Bad Name!' does not match" in text
    assert 'value="Bad Name!"' in text and 'value="ops@example.com"' in text  # the input stays
    assert not AgentIdentity.objects.filter(name="Bad Name!").exists()


def test_workflow_edits_cut_versions_and_conflicting_edits_are_refused(demo) -> None:
    client = admin_client(mfa=True)
    page = client.get("/provisioning/workflows/ticket-triage/").content.decode()
    assert 'name="grant:read:ticketing.ticket" checked' in page
    workflow = Workflow.objects.get(name="ticket-triage")
    form = {
        "version": workflow.version,
        "max_session_seconds": 600,
        "grant:read:ticketing.ticket": "on",
        "tier_action": ["ticketing.get_ticket"],
        "tier_tier": ["1"],
        "tier_quorum": ["1"],
        "tier_conditions": ["[]"],
        "back": "/provisioning/workflows/ticket-triage/",
    }
    client.post("/provisioning/workflows/ticket-triage/", form)
    workflow.refresh_from_db()
    assert workflow.version == 2 and list(workflow.grants.values_list("mode", flat=True)) == ["read"]
    assert AccessReview.objects.filter(workflow=workflow).count() == 1  # support-bot must be reviewed
    stale = client.post("/provisioning/workflows/ticket-triage/", {**form, "version": 1}, follow=True)
    assert "changed by someone else" in stale.content.decode()
    bad = client.post("/provisioning/workflows/ticket-triage/", {**form, "version": 2, "tier_tier": ["9"]}, follow=True)
    assert "tier must be an integer from 1 to 4" in bad.content.decode()
    assert Workflow.objects.get(name="ticket-triage").version == 2


def test_credentials_are_set_and_rotated_but_never_shown(demo) -> None:
    client = admin_client(mfa=True)
    client.post("/provisioning/credentials/crm-api/set/", {"secret": "sk-canary-999"})
    assert ServiceCredential.objects.get(name="crm-api").reveal() == "sk-canary-999"
    assert "sk-canary-999" not in client.get("/provisioning/").content.decode()
    assert "sk-canary-999" not in str(list(AuditEvent.objects.values_list("details", flat=True)))
    response = client.post("/provisioning/credentials/ticketing-api/rotate/", follow=True)
    assert "ticketing-api rotated" in response.content.decode()


def test_context_rules_and_policy_upload(demo, example_text) -> None:
    client = admin_client(mfa=True)
    client.post("/provisioning/context-rules/pii.email/", {"handling": "never", "clear": "step"})
    rule = ContextRule.objects.get(data_type="pii.email")
    assert (rule.handling, rule.clear, rule.persist) == ("never", "step", False)
    preview = client.post("/provisioning/policy/", {"text": example_text})
    assert "~ update context rule pii.email" in preview.content.decode()
    assert ContextRule.objects.get(data_type="pii.email").handling == "never"  # a preview changes nothing
    unreviewed = client.post("/provisioning/policy/", {"text": example_text, "apply": "1"})
    assert unreviewed.status_code == 400  # an apply must carry the plan its preview showed
    assert ContextRule.objects.get(data_type="pii.email").handling == "never"
    plan = re.search(r'name="plan" value="([0-9a-f]{64})"', preview.content.decode()).group(1)
    client.post("/provisioning/policy/", {"text": example_text, "apply": "1", "plan": plan})
    assert ContextRule.objects.get(data_type="pii.email").handling == "redacted"
    bad = client.post("/provisioning/policy/", {"text": "workflows: [{name: x, tiers: [{action: nope, tier: 1}]}]"})
    assert bad.status_code == 400 and "unknown action 'nope'" in html.unescape(bad.content.decode())


@pytest.mark.parametrize("roles", [("reviewer",), ("compliance",), ()])
def test_non_admins_get_403(db, roles) -> None:
    client = Client()
    client.force_login(make_user("x", *roles))
    assert client.get("/provisioning/").status_code == 403
    assert client.post("/provisioning/agents/").status_code == 403
