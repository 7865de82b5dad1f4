"""Admins and compliance staff in real Chromium, signed in through the real provider."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from agents import gateway, sessions
from agents.models import AgentSession
from audit.chain import label
from audit.models import AuditEvent
from governance.models import AgentIdentity, Campaign
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_provisioning_needs_an_mfa_step_up(live_server, oidc_settings, new_page, demo) -> None:
    page = new_page()
    sign_in(page, "dave", next_path="/provisioning/")  # password only
    page.wait_for_selector("text=Changes here need a recent sign-in with a second factor")
    auth_requests = []
    page.on("request", lambda r: auth_requests.append(r.url) if "/auth?" in r.url else None)
    page.locator("tr:has-text('refund-bot')").get_by_role("button", name="Suspend").click()
    page.wait_for_selector("text=Test identity provider: sign in")  # sent back to the IdP
    assert any("prompt=login" in url and "acr_values=urn%3Awarden%3Amfa" in url for url in auth_requests)
    assert AgentIdentity.objects.get(name="refund-bot").status == "active"
    page.fill("input[name=login]", "dave")
    page.fill("input[name=password]", "pw")
    page.check("input[name=mfa]")
    page.click("button[type=submit]")
    # The click that needed the step-up is sent again after it: no second click.
    page.wait_for_selector("text=Agent refund-bot is now suspended")
    page.wait_for_url("**/provisioning/")
    assert AgentIdentity.objects.get(name="refund-bot").status == "suspended"
    event = AuditEvent.objects.get(kind="provisioning.agent_suspended")
    assert event.details["auth"]["amr"] == ["pwd", "mfa"] and event.details["auth"]["acr"] == "urn:warden:mfa"
    dave = get_user_model().objects.get(external_identities__subject="dave")
    assert event.actor == label(dave)


def test_a_campaign_certifies_one_agent_and_revokes_another(live_server, oidc_settings, new_page, demo) -> None:
    session, token = sessions.start("support-bot", "ticket-triage", "test", "user:dana")
    gateway.authorize(token, "ticketing.get_ticket", {"ticket_id": "T-2001"})
    page = new_page()
    sign_in(page, "carol", next_path="/campaigns/")
    page.fill("#c-name", "Q4 recertification")
    page.fill("#c-deadline", (timezone.now() + timedelta(days=14)).date().isoformat())
    page.click("button:has-text('Open campaign')")
    page.wait_for_selector("text=opened for 2 agents")
    page.locator("section:has-text('refund-bot')").get_by_role("button", name="Certify refund-bot").click()
    page.wait_for_selector("text=refund-bot: decision recorded")
    support = page.locator("section:has-text('support-bot')")
    support.get_by_role("button", name="Revoke support-bot").click()  # no reason, no confirmation
    page.wait_for_selector("text=To revoke support-bot, give a reason and tick the confirmation")
    support = page.locator("section:has-text('support-bot')")
    support.locator("input[name=note]").first.fill("replaced by ticket-bot")
    support.locator("input[name=confirm]").first.check()
    support.get_by_role("button", name="Revoke support-bot").click()
    page.wait_for_selector("text=support-bot: decision recorded")
    page.wait_for_selector("text=2 of 2 decided")
    session.refresh_from_db()
    assert (session.status, session.termination_verified) == ("terminated", True)
    campaign = Campaign.objects.get()
    page.goto(f"/campaigns/{campaign.pk}/report/")
    rows = page.locator("tbody tr")
    assert rows.count() == 2
    text = page.locator("tbody").inner_text()
    assert "refund-bot" in text and "certified" in text and "support-bot" in text and "revoked" in text
    assert AgentSession.objects.get(pk=session.pk).termination_reason == "access revoked in recertification"
