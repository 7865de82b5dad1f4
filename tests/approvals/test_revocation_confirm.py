"""Revoking a workflow (in an access review or a campaign) or a whole agent asks for a reason
and a ticked confirmation in the UI, as deprovisioning does; without them nothing changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from governance.models import AccessReview, AgentIdentity, CampaignItem
from tests.approvals.conftest import make_user
from tests.approvals.test_campaigns import open_campaign
from tests.governance.test_access_reviews import change_tiers

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_access_review_is_revoked_only_with_a_reason_and_a_confirmation(applied_policy, example_text, demo) -> None:
    change_tiers(example_text)
    review = AccessReview.objects.get()
    carol = client_for(make_user("carol", "compliance"))
    page = carol.get("/reviews/").content.decode()
    assert 'name="note" required' in page and 'name="confirm" required' in page
    for form in ({}, {"note": "not needed"}, {"confirm": "on"}, {"note": "  ", "confirm": "on"}):
        response = carol.post(f"/reviews/{review.pk}/revoke/", form, follow=True)
        assert "give a reason and tick the confirmation" in response.content.decode()
        assert AccessReview.objects.get().status == "open"
    carol.post(f"/reviews/{review.pk}/revoke/", {"note": "not needed any more", "confirm": "on"})
    review.refresh_from_db()
    assert (review.status, review.note) == ("revoked", "not needed any more")
    assert not AgentIdentity.objects.get(name="support-bot").workflows.filter(name="ticket-triage").exists()


def test_a_campaign_revokes_only_with_a_reason_and_a_confirmation(demo) -> None:
    AgentIdentity.objects.update(created_at=timezone.now() - timedelta(days=200))
    carol_user = make_user("carol", "compliance")
    campaign = open_campaign(carol_user)
    item = CampaignItem.objects.get(campaign=campaign, agent__name="support-bot")
    carol = client_for(carol_user)
    url = f"/campaigns/{campaign.pk}/items/{item.pk}/decide/"
    for form in (
        {"decision": "revoke_agent"},
        {"decision": "revoke_agent", "note": "gone"},
        {"decision": "revoke_workflow", "workflow": "ticket-triage", "confirm": "on"},
    ):
        response = carol.post(url, form, follow=True)
        assert "give a reason and tick the confirmation" in response.content.decode()
        assert CampaignItem.objects.get(pk=item.pk).status == "pending"
    carol.post(url, {"decision": "revoke_workflow", "workflow": "ticket-triage", "note": "moved", "confirm": "on"})
    item.refresh_from_db()
    assert item.status == "revoked" and item.note == "moved"
    # certifying needs neither
    other = CampaignItem.objects.get(campaign=campaign, agent__name="refund-bot")
    carol.post(f"/campaigns/{campaign.pk}/items/{other.pk}/decide/", {"decision": "certify"})
    assert CampaignItem.objects.get(pk=other.pk).status == "certified"
