"""A reviewer's day in real Chromium, signed in through a real OpenID Connect provider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from agents.models import ActionRequest, AgentSession
from audit.chain import label, verify
from audit.models import AuditEvent
from demo_systems.models import Refund
from governance.models import ExternalIdentity
from tests.approvals.conftest import run_to_pause
from tests.e2e.conftest import USERS, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"


def user_named(sub: str):
    return get_user_model().objects.get(external_identities__subject=sub)


def test_a_reviewer_signs_in_approves_and_the_session_completes(
    live_server, oidc_settings, new_page, demo, model_server, eager_celery
) -> None:
    ar = run_to_pause("refund-bot", "refund-triage", "Handle T-2002", "user:dana")
    page = new_page()
    sign_in(page, "bob")
    row = page.locator(f"tr[data-action-request='{ar.pk}']")
    row.wait_for()
    assert "crm.issue_refund" in row.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "queue.png"), full_page=True)
    row.get_by_role("link", name="crm.issue_refund").click()
    page.wait_for_selector("h1:has-text('crm.issue_refund')")
    assert ar.params_hash in page.content()
    page.screenshot(path=str(SCREENSHOTS / "detail.png"), full_page=True)
    page.fill("#approve-comment", "Duplicate charge confirmed in the ledger.")
    page.click("button[name=approve]")
    page.wait_for_selector("text=Approved: crm.issue_refund is now succeeded")
    session = AgentSession.objects.get(pk=ar.session_id)
    assert session.status == "completed" and session.termination_verified
    assert Refund.objects.count() == 1
    bob = user_named("bob")
    decided = AuditEvent.objects.get(kind="approval.decided")
    assert decided.actor == label(bob) and decided.details["comment"].startswith("Duplicate charge")
    assert AuditEvent.objects.filter(kind="session.completed", session=str(session.pk)).exists()
    assert AuditEvent.objects.filter(kind="auth.login", actor=label(bob)).exists()
    assert verify().ok


def test_the_initiator_has_no_button_and_a_forged_post_is_refused(
    live_server, oidc_settings, new_page, demo, model_server
) -> None:
    page = new_page()
    sign_in(page, "bob")
    ar = run_to_pause("refund-bot", "refund-triage", "T-2002", label(user_named("bob")))
    page.goto(f"/approvals/{ar.pk}/")
    page.wait_for_selector("text=You initiated this session")
    assert page.locator("button[name=approve]").count() == 0
    status = page.evaluate(
        """async ([url, hash]) => {
            const token = document.querySelector('input[name=csrfmiddlewaretoken]').value;
            const body = new URLSearchParams({csrfmiddlewaretoken: token, params_hash: hash, comment: 'me'});
            const r = await fetch(url, {method: 'POST', body, credentials: 'same-origin'});
            return r.status; }""",
        [f"/approvals/{ar.pk}/approve/", ar.params_hash],
    )
    assert status == 403
    assert not Refund.objects.exists()
    assert ActionRequest.objects.get(pk=ar.pk).status == "awaiting_approval"


def test_a_stale_page_cannot_approve_changed_parameters(
    live_server, oidc_settings, new_page, demo, model_server
) -> None:
    ar = run_to_pause("refund-bot", "refund-triage", "T-2002", "user:dana")
    page = new_page()
    sign_in(page, "alice", next_path=f"/approvals/{ar.pk}/")
    # The request's parameters change after the page was rendered.
    ActionRequest.objects.filter(pk=ar.pk).update(params_hash="e" * 64, params={"amount": 9999})
    page.click("button[name=approve]")
    page.wait_for_selector("text=the parameters changed since this page was loaded")
    assert not Refund.objects.exists()


def test_two_reviewers_approving_at_once_execute_once(
    live_server, oidc_settings, new_page, demo, model_server, eager_celery
) -> None:
    ar = run_to_pause("refund-bot", "refund-triage", "T-2002", "user:dana")
    pages = [new_page(), new_page()]
    for page, user in zip(pages, ["alice", "bob"]):
        sign_in(page, user, next_path=f"/approvals/{ar.pk}/")
    for page in pages:  # submit both before waiting for either
        page.evaluate("document.querySelector('button[name=approve]').form.requestSubmit()")
    for page in pages:
        page.wait_for_selector(".success, .error")
    outcomes = sorted(p.locator(".success, .error").first.inner_text() for p in pages)
    assert Refund.objects.count() == 1
    assert sum("Approved" in o for o in outcomes) == 1, outcomes
    assert ActionRequest.objects.get(pk=ar.pk).status == "succeeded"


def test_a_rejection_with_a_comment_reaches_the_agent(
    live_server, oidc_settings, new_page, demo, model_server, eager_celery
) -> None:
    ar = run_to_pause("refund-bot", "refund-triage", "T-2002", "user:dana")
    page = new_page()
    sign_in(page, "alice", next_path=f"/approvals/{ar.pk}/")
    page.fill("#reject-comment", "Only EUR 40 was charged twice.")
    page.click("button[name=reject]")
    page.wait_for_selector("text=Rejected: crm.issue_refund is now rejected")
    ar.refresh_from_db()
    assert ar.error == "rejected by a reviewer: Only EUR 40 was charged twice."
    session = AgentSession.objects.get(pk=ar.session_id)
    assert session.status == "completed" and not Refund.objects.exists()


def test_a_user_without_the_reviewer_group_gets_403(live_server, oidc_settings, new_page, db) -> None:
    page = new_page()
    page.goto("/approvals/")
    page.get_by_role("link", name="Sign in with your identity provider").click()
    page.fill("input[name=login]", "mallory")
    page.fill("input[name=password]", "pw")
    with page.expect_response(lambda r: r.url.endswith("/approvals/")) as info:
        page.click("button[type=submit]")
    assert info.value.status == 403


def test_a_new_tier_3_item_appears_without_a_reload(live_server, oidc_settings, new_page, demo, model_server) -> None:
    page = new_page()
    sign_in(page, "alice")
    page.wait_for_selector("text=Nothing is waiting for approval")
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    ar = run_to_pause("refund-bot", "refund-triage", "T-2002", "user:dana")
    page.locator(f"tr[data-action-request='{ar.pk}']").wait_for(timeout=10_000)
    assert navigations == []  # it came by polling, not by a reload


def test_losing_a_group_at_the_idp_loses_the_role_at_next_login(
    live_server, oidc_settings, new_page, oidc_users_file, db
) -> None:
    page = new_page()
    sign_in(page, "alice")
    assert user_named("alice").groups.filter(name="reviewer").exists()
    page.click("header button:has-text('Log out')")
    page.wait_for_url("**/accounts/login/**")
    users = json.loads(oidc_users_file.read_text())
    users["alice"]["groups"] = []
    oidc_users_file.write_text(json.dumps(users))
    try:
        page.goto("/approvals/")
        page.get_by_role("link", name="Sign in with your identity provider").click()
        # The IdP session ended at logout, so the provider asks again.
        page.fill("input[name=login]", "alice")
        page.fill("input[name=password]", "pw")
        with page.expect_response(lambda r: r.url.endswith("/approvals/")) as info:
            page.click("button[type=submit]")
        assert info.value.status == 403
        assert not user_named("alice").groups.filter(name="reviewer").exists()
    finally:
        oidc_users_file.write_text(json.dumps(USERS))


def test_users_are_identified_by_issuer_and_subject(live_server, oidc_settings, new_page, db) -> None:
    get_user_model().objects.create_user("squatter", "alice@example.com", "x-long-password-1")
    page = new_page()
    sign_in(page, "alice")
    identity = ExternalIdentity.objects.get(subject="alice")
    assert identity.issuer == oidc_settings.OIDC_OP_ISSUER
    assert identity.user.username != "squatter"  # the same email did not merge the accounts
