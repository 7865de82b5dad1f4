"""Against the real provider: tokens for another client, a wrong nonce and a replayed code are refused."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.db import SessionStore

from audit.models import AuditEvent

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def start_login(page, user: str) -> None:
    page.goto("/approvals/")
    page.get_by_role("link", name="Sign in with your identity provider").click()
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", user)
    page.fill("input[name=password]", "pw")


def signed_in(page) -> bool:
    response = page.goto("/approvals/")
    return "/accounts/login/" not in page.url and response.status == 200


def test_an_id_token_for_another_audience_is_refused(live_server, oidc_settings, new_page, db) -> None:
    oidc_settings.OIDC_RP_CLIENT_ID = "other-client"  # the provider issues aud=other-client
    oidc_settings.OIDC_RP_CLIENT_SECRET = "other-client-secret"
    page = new_page()
    start_login(page, "alice")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert not signed_in(page)
    assert not AuditEvent.objects.filter(kind="auth.login").exists()


def test_a_wrong_nonce_is_refused(live_server, oidc_settings, new_page, db) -> None:
    page = new_page()
    start_login(page, "alice")
    cookie = next(c for c in page.context.cookies() if c["name"] == "warden_sessionid")
    store = SessionStore(session_key=cookie["value"])
    states = store["oidc_states"]
    for state in states.values():
        state["nonce"] = "not-the-nonce-that-was-sent"
    store["oidc_states"] = states
    store.save()
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert not signed_in(page)


def test_a_replayed_code_is_refused(live_server, oidc_settings, new_page, db) -> None:
    page = new_page()
    callbacks = []
    page.on("request", lambda r: callbacks.append(r.url) if "/oidc/callback/" in r.url else None)
    start_login(page, "alice")
    page.click("button[type=submit]")
    page.wait_for_url("**/approvals/")
    assert callbacks
    page.click("header button:has-text('Log out')")
    page.wait_for_url("**/accounts/login/**")
    page.goto(callbacks[0])  # the same code and state again
    assert not signed_in(page)
    assert AuditEvent.objects.filter(kind="auth.login").count() == 1
