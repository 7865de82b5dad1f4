"""The request page in real Chromium: the current value next to the proposed one, the link to
the record, keyboard shortcuts, and a phone-sized screen."""

from __future__ import annotations

import pytest

from agents.models import ActionRequest
from demo_systems.models import Refund
from tests.approvals.conftest import run_to_pause
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_the_reviewer_sees_the_current_value_next_to_the_proposed_one_and_the_record(
    live_server, oidc_settings, new_page, demo, model_server
) -> None:
    Refund.objects.create(customer_id="C-1002", amount=40, currency="EUR", reason="an earlier refund")
    ar = run_to_pause("refund-bot", "refund-triage", "Handle T-2002", "user:dana")
    page = new_page()
    sign_in(page, "bob", next_path=f"/approvals/{ar.pk}/")
    diff = page.locator("table.diff")
    rows = {
        row.locator("th").inner_text(): (
            row.locator("code.current").inner_text(),
            row.locator("code.proposed").inner_text(),
        )
        for row in diff.locator("tbody tr").all()
    }
    assert rows == {"refunds in EUR": ("1", "2"), "refunded in EUR": ("40.0", "290.0")}
    link = page.locator("a[data-record-link]")
    assert link.inner_text() == "Open crm.customer C-1002 in crm"
    assert link.get_attribute("href") == "/demo/crm/customers/C-1002/"
    assert page.locator("#review-keys").is_visible()
    page.set_viewport_size({"width": 390, "height": 844})
    assert _page_width(page) <= 390
    page.goto(link.get_attribute("href"))
    page.wait_for_selector("h1:has-text('Grace Hopper')")
    assert "an earlier refund" in page.content() and "234-56-7890" not in page.content()
    assert _page_width(page) <= 390


def test_a_broken_preview_still_lets_the_reviewer_decide(
    live_server, oidc_settings, new_page, demo, model_server, eager_celery
) -> None:
    from demo_systems.models import ApiKey

    ar = run_to_pause("refund-bot", "refund-triage", "Handle T-2002", "user:dana")
    ApiKey.objects.filter(system="demo_crm").update(active=False)  # the CRM refuses Warden now
    page = new_page()
    sign_in(page, "alice", next_path=f"/approvals/{ar.pk}/")
    page.wait_for_selector("text=Current value unavailable: demo_crm: the API key was refused")
    page.fill("#reject-comment", "Cannot find the customer.")
    page.click("button[name=reject]")
    page.wait_for_selector("text=Rejected: crm.issue_refund is now rejected")


def test_keyboard_shortcuts_approve_reject_and_go_to_the_next_request(
    live_server, oidc_settings, new_page, demo, model_server, eager_celery
) -> None:
    first = run_to_pause("refund-bot", "refund-triage", "Handle T-2002", "user:dana")
    second = run_to_pause("refund-bot", "refund-triage", "Handle T-2002", "user:erin")
    page = new_page()
    sign_in(page, "alice", next_path=f"/approvals/{first.pk}/")
    page.keyboard.press("n")
    page.wait_for_url(f"**/approvals/{second.pk}/")
    # Keys typed into a field are text, never shortcuts.
    page.click("#approve-comment")
    page.keyboard.type("a a")
    page.click("h1")
    page.keyboard.press("a")  # one press only arms
    page.wait_for_selector("text=Press a again to approve.")
    assert ActionRequest.objects.get(pk=second.pk).status == "awaiting_approval"
    assert page.evaluate("document.activeElement.name") == "approve"
    page.keyboard.press("a")
    page.wait_for_selector("text=Approved: crm.issue_refund is now succeeded")
    assert ActionRequest.objects.get(pk=second.pk).decisions.get().comment == "a a"
    page.keyboard.press("n")  # the only other one left
    page.wait_for_url(f"**/approvals/{first.pk}/")
    page.keyboard.press("r")
    assert page.evaluate("document.activeElement.id") == "reject-comment"
    page.keyboard.type("Only EUR 40 was charged twice.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("text=Rejected: crm.issue_refund is now rejected")
    assert ActionRequest.objects.get(pk=first.pk).error == "rejected by a reviewer: Only EUR 40 was charged twice."
    page.keyboard.press("n")  # nothing else waits: back to the queue
    page.wait_for_url("**/approvals/")
