"""Hardening item 13: the campaign and provisioning forms answer invalid dates, over-long names
and odd values with a 4xx and a clear message, never a 500, and write nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from audit.models import AuditEvent
from governance.models import AgentIdentity, Campaign
from tests.approvals.conftest import make_user
from tests.approvals.test_provisioning import admin_client

pytestmark = pytest.mark.django_db
CAMPAIGN = {"name": "Q4", "scope": "all", "scope_value": "", "deadline": "2999-01-01", "overdue_policy": "suspend"}
AGENT = {"name": "new-bot", "owner": "ops@example.com", "description": "", "recertify_by": "2027-05-01"}


@pytest.fixture
def compliance(demo) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(make_user("carol", "compliance"))
    return client


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "n" * 201}, "at most 200 characters"),
        ({"scope": "owner", "scope_value": "o" * 300 + "@example.com"}, "at most 254 characters"),
        ({"deadline": "2027-02-30"}, "the deadline must be a date"),
        ({"deadline": "2027-13-01"}, "the deadline must be a date"),
        ({"deadline": "2027-05-01T10:00:00+99:00"}, "the deadline must be a date"),
        ({"deadline": "9999-12-31T23:59:59-01:00"}, "too far in the future"),
        ({"deadline": "9999-12-31"}, "too far in the future"),
        ({"deadline": "0001-01-01T00:00:00+01:00"}, "in the future"),
        ({"deadline": ""}, "the deadline must be a date"),
        ({"scope": "x" * 50}, "the scope is"),
        ({"overdue_policy": "x" * 50}, "revoked or suspended"),
    ],
)
def test_the_campaign_form_refuses_clearly(compliance, change, message) -> None:
    response = compliance.post("/campaigns/", {**CAMPAIGN, **change})
    assert response.status_code == 400, response.status_code
    assert message in response.content.decode()
    assert not Campaign.objects.exists()


def test_the_campaign_form_still_opens_a_good_campaign(compliance) -> None:
    response = compliance.post("/campaigns/", CAMPAIGN)
    assert response.status_code == 302 and Campaign.objects.get().name == "Q4"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "a" * 200}, "too long"),
        ({"owner": "o" * 300 + "@example.com"}, "at most 254"),
        ({"recertify_by": "2027-02-30"}, "is not a date"),
        ({"recertify_by": "0000-00-00"}, "is not a date"),
        ({"recertify_by": "2027-05-01T10:00:00"}, "is not a date"),
        ({"recertify_by": "+2027-05-01"}, "is not a date"),
        ({"workflows": ["w" * 300]}, "too long"),
        ({"name": ""}, "does not match"),
    ],
)
def test_the_provisioning_agent_form_refuses_clearly(demo, change, message) -> None:
    client = admin_client(mfa=True)
    client.raise_request_exception = False
    before = AuditEvent.objects.count()
    response = client.post("/provisioning/agents/", {**AGENT, **change})
    assert response.status_code == 400, response.status_code
    assert message in response.content.decode()
    assert not AgentIdentity.objects.filter(name__in=["new-bot", change.get("name", "new-bot")]).exists()
    assert AuditEvent.objects.count() == before


def test_the_provisioning_agent_form_still_creates_an_agent(demo) -> None:
    response = admin_client(mfa=True).post("/provisioning/agents/", AGENT)
    assert response.status_code == 302 and AgentIdentity.objects.filter(name="new-bot").exists()


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ('[{"param": "ticket_id", "op": "eq", "value": NaN, "tier": 3}]', "not a finite number"),
        ('[{"param": "ticket_id", "op": "gt", "value": Infinity, "tier": 3}]', "not a finite number"),
        ('[{"param": "ticket_id", "op": "eq", "value": "a\\u0000b", "tier": 3}]', "NUL"),
        ("[" * 50_000 + "]" * 50_000, "conditions must be a JSON list"),
    ],
)
def test_the_workflow_form_refuses_values_the_database_cannot_hold(demo, conditions, message) -> None:
    from governance.models import Workflow

    client = admin_client(mfa=True)
    client.raise_request_exception = False
    workflow = Workflow.objects.get(name="ticket-triage")
    form = {
        "version": workflow.version,
        "max_session_seconds": 600,
        "grant:read:ticketing.ticket": "on",
        "tier_action": ["ticketing.get_ticket"],
        "tier_tier": ["1"],
        "tier_quorum": ["1"],
        "tier_conditions": [conditions],
        "back": "/provisioning/workflows/ticket-triage/",
    }
    response = client.post("/provisioning/workflows/ticket-triage/", form, follow=True)
    # The editor comes back with the input kept and the error at the row (400, never a 500).
    assert response.status_code == 400 and message in response.content.decode()
    assert Workflow.objects.get(name="ticket-triage").version == workflow.version
