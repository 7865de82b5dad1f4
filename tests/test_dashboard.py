import pytest
from django.test import Client

from agents import gateway, sessions
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db


def test_the_home_page_counts_and_charts(demo) -> None:
    _, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"})
    gateway.authorize(token, "crm.nope", {})
    gateway.authorize(
        token, "crm.issue_refund", {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "x"}
    )
    client = Client()
    client.force_login(make_user("dave", "admin"))
    response = client.get("/")
    stats = response.context["stats"]
    assert stats["pending_approvals"] == 1 and stats["sessions_running"] == 1
    assert {b["label"]: b["count"] for b in stats["bars"]} == {
        "Tier 1": 1,
        "Tier 2": 0,
        "Tier 3": 1,
        "Tier 4": 0,
        "Refused": 1,
    }
    body = response.content.decode()
    assert "<svg" in body and "pending approvals" in body and "active: <strong>2</strong>" in body
