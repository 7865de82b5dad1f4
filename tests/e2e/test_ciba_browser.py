"""Approval on the reviewer's device from the request page, in real Chromium, signed in
through the real oidc-provider that also runs CIBA (tests/oidc/provider.mjs with CIBA=1)."""

from __future__ import annotations

import pytest

from agents.models import ActionRequest
from approvals.models import CibaRequest
from demo_systems.models import Refund
from tests.approvals.ciba_idp import (  # noqa: F401 (fixtures)
    answer_on_device,
    ciba_idp,
    ciba_settings,
    device,
    poll_until_done,
)
from tests.approvals.conftest import run_to_pause

# The browser and the other e2e fixtures come from tests/e2e/conftest.py: imported into a
# module elsewhere, its session-scoped browser became a second Playwright in the process, and
# every browser test after it failed ("Sync API inside the asyncio loop").
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def oidc_provider(ciba_idp: str) -> str:
    """The browser sign-in goes through the same provider, so it knows the reviewer's `sub`."""
    return ciba_idp


def test_a_reviewer_approves_on_their_device_from_the_request_page(
    live_server, oidc_settings, ciba_settings, ciba_idp, new_page, demo, model_server, eager_celery
) -> None:
    ar = run_to_pause("refund-bot", "refund-triage", "Handle T-2002", "user:dana")
    page = new_page()
    sign_in(page, "alice", next_path=f"/approvals/{ar.pk}/")
    page.click("button[name=ciba]")
    page.wait_for_selector("[data-ciba-status=pending]")
    shown = page.inner_text("[data-binding-message]")
    pending = device(ciba_idp, "alice")
    assert [p["binding_message"] for p in pending] == [shown] == [f"issue_refund#{ar.params_hash[:6]}"]
    answer_on_device(ciba_idp, "alice", pending[0]["auth_req_id"], "confirm")
    assert poll_until_done(CibaRequest.objects.get()).status == "approved"
    page.wait_for_selector("[data-ciba-status=approved]")  # the waiting block reloads the page
    assert "Succeeded" in page.inner_text("main") or "succeeded" in page.inner_text("main")
    assert ActionRequest.objects.get(pk=ar.pk).status == "succeeded" and Refund.objects.count() == 1
