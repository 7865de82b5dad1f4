"""The admin UI keeps work, in real Chromium through the real provider: a change made before
the MFA step-up is sent again after it, and the workflow editor keeps every field on an error,
with the error at its row, and edits conditions as rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from governance.models import TierAssignment, Workflow
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"
EDITOR = "/provisioning/workflows/refund-triage/"


def conditions(action: str = "crm.issue_refund") -> list:
    return TierAssignment.objects.get(workflow__name="refund-triage", action_type__name=action).conditions


def test_a_workflow_edit_made_before_the_step_up_is_saved_after_it(live_server, oidc_settings, new_page, demo) -> None:
    page = new_page()
    sign_in(page, "dave", next_path=EDITOR)  # password only
    refund = page.locator("fieldset[data-action='crm.issue_refund']")
    refund.locator("tr.condition").filter(has=page.locator("input[name=cond_value][value='100']")).locator(
        "input[name=cond_value]"
    ).fill("150")
    blank = refund.locator("tr.condition").last
    blank.locator("input[name=cond_param]").fill("reason")
    blank.locator("select[name=cond_op]").select_option("matches")
    blank.locator("input[name=cond_value]").fill("(?i)goodwill")
    blank.locator("input[name=cond_tier]").fill("3")
    page.fill("#w-max", "1200")
    page.click("button:has-text('Save as a new version')")
    page.wait_for_selector("text=Test identity provider: sign in")  # the step-up
    assert Workflow.objects.get(name="refund-triage").version == 1
    page.fill("input[name=login]", "dave")
    page.fill("input[name=password]", "pw")
    page.check("input[name=mfa]")
    page.click("button[type=submit]")
    page.wait_for_selector("text=refund-triage saved as v2")  # sent again, without a second click
    workflow = Workflow.objects.get(name="refund-triage")
    assert (workflow.version, workflow.max_session_seconds) == (2, 1200)
    assert {"param": "amount", "op": "gt", "value": 150, "tier": 3} in conditions()
    assert {"param": "reason", "op": "matches", "value": "(?i)goodwill", "tier": 3} in conditions()


def test_the_editor_keeps_every_field_and_shows_each_error_at_its_row(
    live_server, oidc_settings, new_page, demo
) -> None:
    page = new_page()
    sign_in(page, "dave", mfa=True, next_path=EDITOR)
    page.fill("#w-max", "1300")
    refund = page.locator("fieldset[data-action='crm.issue_refund']")
    currency = refund.locator("tr.condition").filter(has=page.locator("input[name=cond_value][value='EUR']"))
    currency.locator("input[name=cond_tier]").fill("2")  # does not raise tier 2
    new_row = page.locator("fieldset.tier-row").last
    new_row.locator("input[name=tier_action]").fill("crm.isue_refund")
    new_row.locator("input[name=tier_tier]").fill("3")
    page.uncheck("input[name='grant:read:crm.refund']")
    page.click("button:has-text('Save as a new version')")
    page.wait_for_selector("text=Nothing was saved")
    assert Workflow.objects.get(name="refund-triage").version == 1
    assert page.input_value("#w-max") == "1300"
    assert not page.is_checked("input[name='grant:read:crm.refund']")
    typo = page.locator("fieldset[data-action='crm.isue_refund']")
    assert typo.locator("input[name=tier_action]").input_value() == "crm.isue_refund"
    assert "unknown action 'crm.isue_refund' (did you mean 'crm.issue_refund'?)" in typo.inner_text()
    refund = page.locator("fieldset[data-action='crm.issue_refund']")
    assert "Condition 2: tier 2 does not raise the assigned tier 2" in refund.inner_text()
    listing = page.locator("fieldset[data-action='crm.list_refunds']")
    assert "needs read on crm.refund, which the access map does not grant" in listing.inner_text()
    body = page.locator("main").inner_text()
    assert "workflows[" not in body and "tiers[" not in body
    page.screenshot(path=str(SCREENSHOTS / "workflow_edit.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # Put right what was wrong; the rest of the input is still there and is saved.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.check("input[name='grant:read:crm.refund']")
    typo.locator("input[name=tier_action]").fill("crm.search_customers")
    refund.locator("tr.condition").filter(has=page.locator("input[name=cond_value][value='EUR']")).locator(
        "input[name=cond_tier]"
    ).fill("3")
    page.click("button:has-text('Save as a new version')")
    page.wait_for_selector("text=refund-triage saved as v2")
    assert Workflow.objects.get(name="refund-triage").max_session_seconds == 1300
    assert (
        TierAssignment.objects.get(workflow__name="refund-triage", action_type__name="crm.search_customers").tier == 3
    )


def test_admin_pages_fit_a_390px_screen(live_server, oidc_settings, new_page, demo, example_text) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from approvals import services
    from governance.models import Campaign
    from tests.governance.test_access_reviews import change_tiers

    change_tiers(example_text)  # an open access review, with its revoke form
    page = new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, "carol", next_path="/reviews/")
    from django.contrib.auth import get_user_model

    carol = get_user_model().objects.get(external_identities__subject="carol")
    services.campaign_create(
        name="Q4",
        scope="all",
        scope_value="",
        deadline=timezone.now() + timedelta(days=7),
        overdue_policy="suspend",
        actor=carol,
    )
    campaign = Campaign.objects.get()
    for path in ("/reviews/", "/campaigns/", f"/campaigns/{campaign.pk}/"):
        page.goto(path)
        page.wait_for_selector("h1")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
