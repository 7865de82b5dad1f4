from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from django.utils import timezone

from agents import sessions, tasks
from approvals.services import DecisionRefused, access_review_decide
from audit.models import AuditEvent
from governance.models import AccessReview, AgentIdentity, Workflow
from governance.policyfile import apply_policy, from_document, load
from governance.versions import diff

pytestmark = pytest.mark.django_db


def change_tiers(example_text: str, tier: int = 3) -> None:
    doc = yaml.safe_load(example_text)
    doc["workflows"][1]["tiers"][3]["tier"] = tier  # ticket-triage: ticketing.set_status
    apply_policy(from_document(load(yaml.safe_dump(doc))), actor="cli:alice")


def test_a_changed_access_map_opens_a_review_for_each_agent(applied_policy, example_text) -> None:
    change_tiers(example_text)
    review = AccessReview.objects.get()
    assert (review.agent.name, review.workflow.name, review.from_version, review.to_version) == (
        "support-bot",
        "ticket-triage",
        1,
        2,
    )
    assert review.due_by > timezone.now() + timedelta(days=6)
    workflow = Workflow.objects.get(name="ticket-triage")
    old, new = (v.spec for v in workflow.versions.order_by("version"))
    assert diff(old, new) == ["~ ticketing.set_status: tier 2 -> 3"]
    assert AuditEvent.objects.filter(kind="review.opened").count() == 1


def test_a_description_change_opens_no_review(applied_policy, example_text) -> None:
    doc = yaml.safe_load(example_text)
    doc["workflows"][1]["description"] = "New words."
    apply_policy(from_document(load(yaml.safe_dump(doc))), actor="cli:alice")
    assert Workflow.objects.get(name="ticket-triage").version == 2
    assert not AccessReview.objects.exists()


def test_an_overdue_review_suspends_the_agent(applied_policy, example_text, demo) -> None:
    session, token = sessions.start("support-bot", "ticket-triage", "test", "user:dana")
    change_tiers(example_text)
    assert tasks.enforce_access_reviews() == 0  # not due yet
    AccessReview.objects.update(due_by=timezone.now() - timedelta(seconds=1))
    assert tasks.enforce_access_reviews() == 1
    assert AgentIdentity.objects.get(name="support-bot").status == "suspended"
    assert AccessReview.objects.get().status == "expired"
    session.refresh_from_db()
    assert session.status == "terminated" and session.termination_verified
    assert tasks.enforce_access_reviews() == 0  # a second run changes nothing


def test_a_review_can_be_confirmed_or_revoked(applied_policy, example_text, demo) -> None:
    from tests.approvals.conftest import make_user

    carol = make_user("carol", "compliance")
    session, _ = sessions.start("support-bot", "ticket-triage", "test", "user:dana")
    change_tiers(example_text)
    review = AccessReview.objects.get()
    revoked = access_review_decide(review=review, actor=carol, decision="revoke", note="not needed")
    assert revoked.status == "revoked"
    assert not AgentIdentity.objects.get(name="support-bot").workflows.filter(name="ticket-triage").exists()
    session.refresh_from_db()
    assert session.status == "terminated"
    with pytest.raises(DecisionRefused, match="already revoked"):
        access_review_decide(review=review, actor=carol, decision="confirm")
    assert AuditEvent.objects.get(kind="review.revoked").actor == "user:carol"


def test_the_review_pages(applied_policy, example_text, demo) -> None:
    from django.test import Client

    from tests.approvals.conftest import make_user

    change_tiers(example_text)
    client = Client()
    client.force_login(make_user("carol", "compliance"))
    page = client.get("/reviews/").content.decode()
    assert "support-bot" in page and "v1 → v2" in page
    versions = client.get("/workflows/ticket-triage/versions/").content.decode()
    assert "~ ticketing.set_status: tier 2 -&gt; 3" in versions
    review = AccessReview.objects.get()
    client.post(f"/reviews/{review.pk}/confirm/")
    assert AccessReview.objects.get().status == "confirmed"
    outsider = Client()
    outsider.force_login(make_user("rita", "reviewer"))
    assert outsider.get("/reviews/").status_code == 403
    assert outsider.post(f"/reviews/{review.pk}/revoke/").status_code == 403
