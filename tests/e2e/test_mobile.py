"""At 390 px (a phone), no page is wider than the screen: wide tables scroll inside themselves."""

from __future__ import annotations

import pytest

from tests.approvals.conftest import run_to_pause
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_reviewer_and_admin_pages_fit_a_390px_screen(
    live_server, oidc_settings, new_page, demo, model_server, eager_celery
) -> None:
    ar = run_to_pause("refund-bot", "refund-triage", "Handle T-2002", "user:dana")
    page = new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, "bob")
    page.locator(f"tr[data-action-request='{ar.pk}']").wait_for()
    assert _page_width(page) <= 390
    page.goto(f"/approvals/{ar.pk}/")
    page.wait_for_selector("h1")
    assert _page_width(page) <= 390
    admin = new_page()
    admin.set_viewport_size({"width": 390, "height": 844})
    sign_in(admin, "dave", next_path="/provisioning/")
    for path in ("/provisioning/", "/provisioning/workflows/refund-triage/", "/provisioning/policy/"):
        admin.goto(path)
        admin.wait_for_selector("h1")
        assert _page_width(admin) <= 390, path
