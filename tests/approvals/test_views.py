"""The reviewer UI through Django's test client: access, methods, CSRF, contents."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from agents import sessions
from agents.models import HumanHandoff, SecurityAlert
from audit.models import AuditEvent
from demo_systems.models import Refund
from tests.approvals.conftest import make_user, run_to_pause

pytestmark = pytest.mark.django_db


def client_for(user, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def test_the_queue_lists_pending_requests_for_reviewers(pending_refund, reviewer_alice) -> None:
    page = client_for(reviewer_alice).get(reverse("approvals:queue"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "crm.issue_refund" in body and "refund-bot" in body and 'hx-trigger="every 1s"' in body
    rows = client_for(reviewer_alice).get(reverse("approvals:queue_rows"), {"agent": "support-bot"})
    assert "Nothing is waiting" in rows.content.decode()


@pytest.mark.parametrize("name", ["approvals:queue", "approvals:queue_rows", "approvals:handoffs"])
def test_outsiders_get_403(outsider_mallory, compliance_carol, name) -> None:
    for user in (outsider_mallory, compliance_carol):
        assert client_for(user).get(reverse(name)).status_code == 403
    assert client_for(outsider_mallory).get(reverse("approvals:alerts")).status_code == 403


def test_anonymous_users_are_sent_to_login(db) -> None:
    response = Client().get(reverse("approvals:queue"))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_detail_page_shows_what_is_approved(pending_refund, reviewer_alice) -> None:
    body = client_for(reviewer_alice).get(reverse("approvals:detail", args=[pending_refund.pk])).content.decode()
    for text in (
        pending_refund.params_hash,
        "amount gt 100",
        "write on crm.refund",
        "refund-triage v1",
        "user:dana",
        "ticketing.get_ticket",
        "<code>amount</code></th><td><code>250</code>",
        "Handle T-2002",  # the task as the initiator gave it
        "(this request)",
        "Approve",
        "Reject",
    ):
        assert text in body, text


def test_the_initiator_sees_no_buttons_and_a_forged_post_is_refused(demo, model_server, reviewer_alice) -> None:
    ar = run_to_pause("refund-bot", "refund-triage", "T-2002", "user:alice")
    client = client_for(reviewer_alice)
    body = client.get(reverse("approvals:detail", args=[ar.pk])).content.decode()
    assert 'name="approve"' not in body and "You initiated this session" in body
    response = client.post(reverse("approvals:approve", args=[ar.pk]), {"params_hash": ar.params_hash})
    assert response.status_code == 403
    assert not Refund.objects.exists()
    assert AuditEvent.objects.filter(kind="approval.refused").exists()


def test_approve_by_post(pending_refund, reviewer_alice) -> None:
    response = client_for(reviewer_alice).post(
        reverse("approvals:approve", args=[pending_refund.pk]),
        {"params_hash": pending_refund.params_hash, "comment": "fine"},
    )
    assert response.status_code == 302
    assert Refund.objects.count() == 1


def test_a_stale_page_is_told_to_reload(pending_refund, reviewer_alice) -> None:
    client = client_for(reviewer_alice)
    response = client.post(
        reverse("approvals:approve", args=[pending_refund.pk]), {"params_hash": "f" * 64}, follow=True
    )
    assert "parameters changed since this page was loaded" in response.content.decode()
    assert not Refund.objects.exists()


@pytest.mark.parametrize("name", ["approvals:approve", "approvals:reject"])
def test_deciding_by_get_is_405(pending_refund, reviewer_alice, name) -> None:
    assert client_for(reviewer_alice).get(reverse(name, args=[pending_refund.pk])).status_code == 405


def test_every_state_changing_url_refuses_a_post_without_csrf(pending_refund, reviewer_alice, security_sam) -> None:
    _, token = sessions.start("support-bot", "ticket-triage", "test", "user:dana")
    alert = sessions.raise_alert(SecurityAlert.Kind.ANOMALY, "test alert")
    handoff = HumanHandoff.objects.create(session=pending_refund.session, trigger="test")
    make_user("both", "reviewer", "security")
    urls = [
        reverse("approvals:approve", args=[pending_refund.pk]),
        reverse("approvals:reject", args=[pending_refund.pk]),
        reverse("approvals:handoff_claim", args=[handoff.pk]),
        reverse("approvals:handoff_resolve", args=[handoff.pk]),
        reverse("approvals:alert_update", args=[alert.pk, "acknowledged"]),
        reverse("logout"),
    ]
    from django.contrib.auth import get_user_model

    client = client_for(get_user_model().objects.get(username="both"), csrf=True)
    for url in urls:
        assert client.post(url, {"params_hash": pending_refund.params_hash, "comment": "x"}).status_code == 403, url
    assert not Refund.objects.exists()
    assert (
        Client(enforce_csrf_checks=True).post(reverse("login"), {"username": "a", "password": "b"}).status_code == 403
    )


def test_handoff_claim_and_resolve_are_audited(pending_refund, reviewer_alice, reviewer_bob) -> None:
    handoff = HumanHandoff.objects.create(session=pending_refund.session, trigger="connector error", context={"x": 1})
    alice, bob = client_for(reviewer_alice), client_for(reviewer_bob)
    assert "connector error" in alice.get(reverse("approvals:handoffs")).content.decode()
    alice.post(reverse("approvals:handoff_claim", args=[handoff.pk]))
    refused = bob.post(reverse("approvals:handoff_resolve", args=[handoff.pk]), {"resolution": "x"}, follow=True)
    assert "claimed by user:alice" in refused.content.decode()
    alice.post(reverse("approvals:handoff_resolve", args=[handoff.pk]), {"resolution": "Refunded by hand."})
    handoff.refresh_from_db()
    assert (handoff.status, handoff.responder, handoff.resolution) == ("resolved", "user:alice", "Refunded by hand.")
    event = AuditEvent.objects.get(kind="handoff.resolved")
    assert event.actor == "user:alice" and event.details["resolution"] == "Refunded by hand."


def test_security_can_acknowledge_and_resolve_alerts(db, security_sam) -> None:
    alert = sessions.raise_alert(SecurityAlert.Kind.TIER4_ATTEMPT, "tier 4 attempt")
    client = client_for(security_sam)
    assert "tier 4 attempt" in client.get(reverse("approvals:alerts")).content.decode()
    client.post(reverse("approvals:alert_update", args=[alert.pk, "acknowledged"]))
    client.post(reverse("approvals:alert_update", args=[alert.pk, "resolved"]))
    alert.refresh_from_db()
    assert (alert.status, alert.handled_by) == ("resolved", "user:sam")
    assert client.post(reverse("approvals:alert_update", args=[alert.pk, "deleted"]), follow=True).status_code == 200
    assert [e for e in AuditEvent.objects.filter(kind__startswith="alert.").values_list("kind", flat=True)] == [
        "alert.raised",
        "alert.acknowledged",
        "alert.resolved",
    ]


def test_security_headers(reviewer_alice) -> None:
    response = client_for(reviewer_alice).get(reverse("home"))
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"


def test_dev_login_only_when_enabled(db, settings) -> None:
    make_user("dev", "reviewer")
    settings.WARDEN_DEV_LOGIN = False
    assert Client().post(reverse("login"), {"username": "dev", "password": "pw-not-used-123"}).status_code == 403
    assert "DEVELOPMENT LOGIN" not in Client().get(reverse("login")).content.decode()
    settings.WARDEN_DEV_LOGIN = True
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, "django.contrib.auth.backends.ModelBackend"]
    assert "DEVELOPMENT LOGIN" in Client().get(reverse("login")).content.decode()
    response = Client().post(reverse("login"), {"username": "dev", "password": "pw-not-used-123"})
    assert response.status_code == 302
    bad = Client().post(reverse("login"), {"username": "dev", "password": "nope"})
    assert bad.status_code == 400 and "did not match" in bad.content.decode()


def test_deactivating_a_user_ends_their_sessions(reviewer_alice) -> None:
    client = client_for(reviewer_alice)
    assert client.get(reverse("approvals:queue")).status_code == 200
    reviewer_alice.is_active = False
    reviewer_alice.save()
    assert client.get(reverse("approvals:queue")).status_code == 302


def test_with_a_quorum_the_first_approver_is_told_how_many_more_and_gets_no_second_form(
    demo, model_server, reviewer_alice
) -> None:
    from django.test import Client

    from tests.approvals.conftest import run_to_pause

    ar = run_to_pause("support-bot", "account-maintenance", "raise the limit", "user:dana")
    client = Client()
    client.force_login(reviewer_alice)
    response = client.post(f"/approvals/{ar.pk}/approve/", {"params_hash": ar.params_hash}, follow=True)
    text = response.content.decode()
    assert "Your approval is recorded (1 of 2)" in text and "1 more reviewer approves" in text
    assert "You approved this request" in text
    assert f'action="/approvals/{ar.pk}/approve/"' not in text


def test_a_parameter_value_cannot_fake_another_line(demo, reviewer_alice) -> None:
    from agents import gateway, sessions

    _session, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    fake = "duplicate\namount: 5"
    refund = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": fake}
    ar_id = gateway.authorize(token, "crm.issue_refund", refund, tool_use_id="t1").action_request_id
    body = client_for(reviewer_alice).get(reverse("approvals:detail", args=[ar_id])).content.decode()
    assert "duplicate\\namount: 5" in body  # shown as JSON text, escapes visible
    assert "\namount: 5" not in body.replace("\\n", "")


def test_the_history_lists_decided_requests_with_filters(pending_refund, reviewer_alice, reviewer_bob) -> None:
    from approvals.services import action_request_decide

    action_request_decide(
        action_request=pending_refund,
        reviewer=reviewer_bob,
        decision="reject",
        comment="refund EUR 40 only",
        params_hash=pending_refund.params_hash,
    )
    client = client_for(reviewer_alice)
    page = client.get("/approvals/history/").content.decode()
    assert "crm.issue_refund" in page and "rejected" in page and "refund EUR 40 only" in page
    assert "crm.issue_refund" not in client.get("/approvals/history/", {"outcome": "succeeded"}).content.decode()
    assert "crm.issue_refund" not in client.get("/approvals/").content.decode().split("Decided requests")[1]
    assert client_for_outsider_status() == 403


def client_for_outsider_status() -> int:
    from tests.approvals.conftest import make_user

    return client_for(make_user("mallory")).get("/approvals/history/").status_code


# --- the preview: current values next to the proposed ones ------------------------------------


def test_the_detail_page_shows_the_current_value_next_to_the_proposed_one(pending_refund, reviewer_alice) -> None:
    from demo_systems.models import Refund as DemoRefund

    DemoRefund.objects.create(customer_id="C-1002", amount=40, currency="EUR", reason="earlier")
    body = client_for(reviewer_alice).get(reverse("approvals:detail", args=[pending_refund.pk])).content.decode()
    assert "What would change" in body
    assert '<code class="current">1</code></td><td><code class="proposed">2</code>' in body  # refunds in EUR
    assert '<code class="current">40.0</code></td><td><code class="proposed">290.0</code>' in body
    assert 'href="/demo/crm/customers/C-1002/"' in body and "Open crm.customer C-1002 in crm" in body


def test_a_failing_preview_never_blocks_the_decision(pending_refund, reviewer_alice, monkeypatch) -> None:
    from agents.connectors.demo import DemoCRM

    def broken(self, action, params, credential=None):
        raise RuntimeError("the CRM is down with a secret-looking message")

    monkeypatch.setattr(DemoCRM, "preview", broken)
    client = client_for(reviewer_alice)
    body = client.get(reverse("approvals:detail", args=[pending_refund.pk])).content.decode()
    assert "Current value unavailable: the connector failed (RuntimeError)" in body
    assert "secret-looking" not in body
    assert 'name="approve"' in body and 'name="reject"' in body
    response = client.post(
        reverse("approvals:reject", args=[pending_refund.pk]),
        {"params_hash": pending_refund.params_hash, "comment": "Not today."},
    )
    assert response.status_code == 302
    pending_refund.refresh_from_db()
    assert pending_refund.status == "rejected"


def test_a_missing_record_says_the_current_value_is_unavailable(pending_refund, reviewer_alice) -> None:
    from demo_systems.models import Customer

    Customer.objects.filter(id="C-1002").delete()
    body = client_for(reviewer_alice).get(reverse("approvals:detail", args=[pending_refund.pk])).content.decode()
    assert "Current value unavailable: crm: no such customer" in body and 'name="approve"' in body


def test_a_value_cannot_fake_another_line_in_the_parameters_or_the_preview(pending_refund, reviewer_alice) -> None:
    from agents.models import ActionRequest

    forged = 'x</code></td></tr><tr><th scope="row"><code>amount</code></th><td><code>1'
    ActionRequest.objects.filter(pk=pending_refund.pk).update(
        params={**pending_refund.params, "reason": "duplicate\namount: 1", "note": forged}
    )
    body = client_for(reviewer_alice).get(reverse("approvals:detail", args=[pending_refund.pk])).content.decode()
    assert "<code>&quot;duplicate\\namount: 1&quot;</code>" in body  # one line, the newline escaped
    assert forged not in body and body.count("<code>amount</code></th>") == 1


def test_the_record_link_takes_only_web_addresses(db) -> None:
    from agents.connectors.preview import record_url

    assert record_url({"record_url": "/crm/{id}/"}, "crm.customer", {"id": "C 1/2"}) == "/crm/C%201%2F2/"
    assert (
        record_url({"record_urls": {"crm.customer": "https://crm/{id}"}}, "crm.customer", {"id": 7}) == "https://crm/7"
    )
    for template in ("javascript:alert({id})", "//evil/{id}", "data:text/html,{id}", "/x/{missing}/"):
        assert record_url({"record_url": template}, "crm.customer", {"id": "1"}) == ""
    assert record_url("not a mapping", "crm.customer", {"id": "1"}) == ""


def test_never_persist_values_stay_out_of_the_preview(pending_refund, reviewer_alice, monkeypatch) -> None:
    from agents.connectors.demo import DemoCRM

    def with_ssn(self, action, params, credential=None):
        return {
            "data_object": "crm.customer",
            "record": {"id": "C-1002"},
            "changes": [{"field": "ssn", "current": "234-56-7890", "proposed": "999-99-9999"}],
        }

    monkeypatch.setattr(DemoCRM, "preview", with_ssn)
    body = client_for(reviewer_alice).get(reverse("approvals:detail", args=[pending_refund.pk])).content.decode()
    assert "234-56-7890" not in body and "999-99-9999" not in body and "<code>ssn</code>" in body


def test_next_goes_to_the_oldest_other_request_the_reviewer_can_decide(pending_refund, reviewer_alice) -> None:
    client = client_for(reviewer_alice)
    body = client.get(reverse("approvals:detail", args=[pending_refund.pk])).content.decode()
    assert "No other request waits for you" in body and "<kbd>a</kbd> twice approves" in body
    assert "review-keys.js" in body
    mine = run_to_pause("refund-bot", "refund-triage", "Handle T-2002", "user:alice")  # alice may not decide
    other = run_to_pause("refund-bot", "refund-triage", "Handle T-2002", "user:dana")
    body = client.get(reverse("approvals:detail", args=[pending_refund.pk])).content.decode()
    assert f'href="/approvals/{other.pk}/" data-key-next' in body and str(mine.pk) not in body


def test_the_demo_record_pages_are_for_reviewers_and_hide_the_ssn(demo, reviewer_alice, outsider_mallory) -> None:
    page = client_for(reviewer_alice).get("/demo/crm/customers/C-1002/")
    assert page.status_code == 200 and "Grace Hopper" in page.content.decode()
    assert "234-56-7890" not in page.content.decode()
    assert client_for(reviewer_alice).get("/demo/helpdesk/tickets/T-2002/").status_code == 200
    assert client_for(outsider_mallory).get("/demo/crm/customers/C-1002/").status_code == 403
    assert client_for(reviewer_alice).get("/demo/crm/customers/C-9999/").status_code == 404
