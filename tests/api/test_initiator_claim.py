"""Hardening item 6: `initiated_by` sent with an agent key is a claim, never an identity."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from agents.models import ActionRequest, AgentSession
from approvals import policies
from approvals.services import action_request_decide
from audit.models import AuditEvent
from tests.api.conftest import bearer
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db
REFUND = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "duplicate"}


def test_it_keeps_the_agent_as_the_actor_and_the_claim_as_a_claim(start) -> None:
    started = start(initiated_by="user:bob@example.com")
    session = AgentSession.objects.get(pk=started["session_id"])
    assert session.initiated_by == "agent:refund-bot"
    event = AuditEvent.objects.get(kind="session.started", session=str(session.pk))
    assert event.actor == "agent:refund-bot"
    assert event.details["claimed_initiator"] == "user:bob@example.com"


def test_it_never_uses_the_claim_for_separation_of_duties(start, client) -> None:
    """A claim naming someone neither makes them the initiator nor hides the real one; the
    reviewer page shows it as unverified."""
    bob = make_user("bob", "reviewer")
    started = start(initiated_by="user:bob@example.com")
    pending = (
        bearer(APIClient(), started["token"])
        .post("/api/v1/authorize", {"action": "crm.issue_refund", "params": REFUND}, format="json")
        .json()
    )
    ar = ActionRequest.objects.get(pk=pending["action_request_id"])
    assert not policies.is_initiator(bob, ar.session)
    client.force_login(bob)
    page = client.get(f"/approvals/{ar.pk}/").content.decode()
    assert "Claimed initiator" in page and "user:bob@example.com" in page and "not checked by Warden" in page
    action_request_decide(action_request=ar, reviewer=bob, decision="approve", comment="", params_hash=ar.params_hash)
    assert ActionRequest.objects.get(pk=ar.pk).status == ActionRequest.Status.APPROVED
