from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from agents import sessions
from approvals import services
from approvals.tasks import enforce_campaign_deadlines
from audit.models import AuditEvent
from governance.models import AgentIdentity, Campaign, CampaignItem
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def carol(db):
    return make_user("carol", "compliance")


def open_campaign(actor, **kwargs):
    return services.campaign_create(
        name=kwargs.pop("name", "Q4"),
        scope=kwargs.pop("scope", "all"),
        scope_value=kwargs.pop("scope_value", ""),
        deadline=kwargs.pop("deadline", timezone.now() + timedelta(days=7)),
        overdue_policy=kwargs.pop("overdue_policy", "suspend"),
        actor=actor,
    )


def test_certify_one_revoke_another_and_the_report_lists_both(demo, carol) -> None:
    from agents import gateway

    AgentIdentity.objects.update(created_at=timezone.now() - timedelta(days=200))  # long-standing agents
    campaign = open_campaign(carol)
    assert campaign.items.count() == 2
    session, token = sessions.start("support-bot", "ticket-triage", "test", "user:dana")
    gateway.authorize(token, "ticketing.get_ticket", {"ticket_id": "T-2001"})
    refund_item = campaign.items.get(agent__name="refund-bot")
    support_item = campaign.items.get(agent__name="support-bot")
    services.campaign_item_decide(item=refund_item, actor=carol, decision="certify", note="still needed")
    services.campaign_item_decide(item=support_item, actor=carol, decision="revoke_agent", note="replaced")
    session.refresh_from_db()
    assert (session.status, session.termination_verified) == ("terminated", True)
    assert AgentIdentity.objects.get(name="support-bot").status == "deprovisioned"
    evidence = CampaignItem.objects.get(pk=support_item.pk).evidence
    grants = {(w["name"], g["data_object"], g["mode"]): g for w in evidence["workflows"] for g in w["grants"]}
    assert grants[("ticket-triage", "ticketing.ticket", "read")]["last_used"]  # used just now
    assert grants[("ticket-triage", "mail.message", "write")]["flag"].startswith("not used in 90 days")
    client = Client()
    client.force_login(carol)
    report = client.get(f"/campaigns/{campaign.pk}/report/").content.decode()
    assert "still needed" in report and "replaced" in report and "1 certified, 1 revoked" in report
    rows = list(csv.DictReader(io.StringIO(client.get(f"/campaigns/{campaign.pk}/report.csv").content.decode())))
    assert {(r["agent"], r["decision"]) for r in rows} == {("refund-bot", "certified"), ("support-bot", "revoked")}
    assert AuditEvent.objects.filter(kind="recertification.item_decided").count() == 2


def test_revoking_one_workflow_keeps_the_others(demo, carol) -> None:
    campaign = open_campaign(carol, scope="owner", scope_value="support-lead@example.com")
    item = campaign.items.get()
    services.campaign_item_decide(item=item, actor=carol, decision="revoke_workflow", workflow="ticket-triage")
    agent = AgentIdentity.objects.get(name="support-bot")
    assert list(agent.workflows.values_list("name", flat=True)) == ["account-maintenance"]
    assert agent.status == "active"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": " "}, "give the campaign a name"),
        ({"scope": "owner"}, "name the owner"),
        ({"scope": "system", "scope_value": "nope"}, "no system named 'nope'"),
        ({"deadline": timezone.now() - timedelta(days=1)}, "must be in the future"),
        ({"scope": "owner", "scope_value": "nobody@example.com"}, "no agent identity is in this scope"),
    ],
)
def test_bad_campaigns_are_refused_clearly(demo, carol, kwargs, message) -> None:
    with pytest.raises(services.DecisionRefused, match=message):
        open_campaign(carol, **kwargs)
    assert not Campaign.objects.exists()


def test_undecided_items_follow_the_policy_at_the_deadline(demo, carol) -> None:
    suspend = open_campaign(carol, scope="owner", scope_value="support-lead@example.com")
    revoke = open_campaign(carol, scope="owner", scope_value="payments-lead@example.com", overdue_policy="revoke")
    Campaign.objects.update(deadline=timezone.now() - timedelta(seconds=1))
    assert enforce_campaign_deadlines() == 2
    assert AgentIdentity.objects.get(name="support-bot").status == "suspended"
    assert not AgentIdentity.objects.get(name="refund-bot").workflows.exists()
    assert suspend.items.get().status == revoke.items.get().status == "overdue"
    assert enforce_campaign_deadlines() == 0


def test_the_campaign_pages(demo, carol) -> None:
    client = Client()
    client.force_login(carol)
    response = client.post(
        "/campaigns/",
        {"name": "Q4", "scope": "all", "deadline": "2999-01-01", "overdue_policy": "suspend"},
        follow=True,
    )
    assert "Campaign Q4 opened for 2 agents" in response.content.decode()
    campaign = Campaign.objects.get()
    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "0 of 2 decided" in page and "the agent was created 0 days ago" in page
    bad = client.post("/campaigns/", {"name": "x", "scope": "all", "deadline": "someday", "overdue_policy": "suspend"})
    assert bad.status_code == 400 and "the deadline must be a date" in bad.content.decode()
    outsider = Client()
    outsider.force_login(make_user("rita", "reviewer"))
    assert outsider.get("/campaigns/").status_code == 403


def test_an_approved_tier_3_action_counts_as_use_and_a_new_agent_is_not_called_unused(demo, carol) -> None:
    from agents import gateway
    from approvals.services import action_request_decide
    from governance.recertification import effective_access
    from tests.approvals.conftest import make_user

    AgentIdentity.objects.filter(name="refund-bot").update(created_at=timezone.now() - timedelta(days=200))
    _session, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    refund = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "duplicate"}
    result = gateway.authorize(token, "crm.issue_refund", refund, tool_use_id="t1")
    from agents.models import ActionRequest

    ar = ActionRequest.objects.get(pk=result.action_request_id)
    action_request_decide(
        action_request=ar,
        reviewer=make_user("alice", "reviewer"),
        decision="approve",
        comment="",
        params_hash=ar.params_hash,
    )
    evidence = effective_access(AgentIdentity.objects.get(name="refund-bot"))
    grants = {(w["name"], g["data_object"], g["mode"]): g for w in evidence["workflows"] for g in w["grants"]}
    assert grants[("refund-triage", "crm.refund", "write")]["last_used"]
    assert grants[("refund-triage", "crm.note", "write")]["flag"].startswith("not used in 90 days")
    fresh = effective_access(AgentIdentity.objects.get(name="support-bot"))
    flags = {g["flag"] for w in fresh["workflows"] for g in w["grants"]}
    assert flags == {"no use yet: the agent was created 0 days ago"}
