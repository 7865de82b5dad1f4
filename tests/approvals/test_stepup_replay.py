"""A form submitted without a recent MFA sign-in is kept and sent again after the step-up:
once, by the same user only, for ten minutes, and never with a secret in the session."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client

from approvals import stepup
from governance.models import AgentIdentity
from governance.oidc import SESSION_AUTH_CONTEXT
from tests.approvals.conftest import make_user
from tests.approvals.test_provisioning import admin_client

pytestmark = pytest.mark.django_db


def step_up(client: Client) -> None:
    session = client.session
    session[SESSION_AUTH_CONTEXT] = {"method": "oidc", "amr": ["pwd", "mfa"], "acr": "", "auth_time": int(time.time())}
    session.save()


def replay_path(response) -> str:
    assert response.status_code == 302
    return parse_qs(urlparse(response["Location"]).query)["next"][0]


FORM = {
    "name": "ledger-bot",
    "owner": "ops@example.com",
    "description": "line one\nline two",
    "workflows": ["refund-triage", "ticket-triage"],
}


def test_the_form_is_sent_again_after_the_step_up(demo) -> None:
    client = admin_client(mfa=False)
    path = replay_path(client.post("/provisioning/agents/", FORM))
    assert path.startswith("/stepup/replay/") and not AgentIdentity.objects.filter(name="ledger-bot").exists()
    step_up(client)
    page = client.get(path)
    body = page.content.decode()
    assert page.status_code == 200 and 'action="/provisioning/agents/"' in body and "data-autosubmit" in body
    assert body.count('name="workflows"') == 2 and "line one\nline two" in body
    assert "csrfmiddlewaretoken" in body
    assert client.post("/provisioning/agents/", FORM).status_code == 302  # what the page posts
    agent = AgentIdentity.objects.get(name="ledger-bot")
    assert sorted(agent.workflows.values_list("name", flat=True)) == ["refund-triage", "ticket-triage"]


def test_a_kept_form_is_used_once(demo) -> None:
    client = admin_client(mfa=False)
    path = replay_path(client.post("/provisioning/agents/", FORM))
    step_up(client)
    assert client.get(path).status_code == 200
    again = client.get(path, follow=True)
    assert "no form to send again" in again.content.decode()


def test_a_kept_form_is_never_replayed_for_another_user(demo) -> None:
    client = admin_client(mfa=False)
    path = replay_path(client.post("/provisioning/agents/", FORM))
    eve = make_user("eve", "admin")
    client.force_login(eve)  # someone else signs in on the same browser
    step_up(client)
    assert client.get(path, follow=True).status_code == 200
    assert "no form to send again" in client.get(path, follow=True).content.decode()
    # Even when the session survives (a stash copied into another user's session), it is refused.
    other = admin_client(mfa=False)
    path = replay_path(other.post("/provisioning/agents/", FORM))
    stolen = other.session[stepup.SESSION_KEY]
    thief = Client()
    thief.force_login(eve)
    session = thief.session
    session[stepup.SESSION_KEY] = stolen
    session.save()
    assert "no form to send again" in thief.get(path, follow=True).content.decode()


def test_a_kept_form_expires(demo, monkeypatch) -> None:
    client = admin_client(mfa=False)
    path = replay_path(client.post("/provisioning/agents/", FORM))
    step_up(client)
    later = time.time() + stepup.MAX_AGE_SECONDS + 1
    monkeypatch.setattr(stepup.time, "time", lambda: later)
    assert "no form to send again" in client.get(path, follow=True).content.decode()


def test_a_secret_is_never_kept_in_the_session(demo) -> None:
    client = admin_client(mfa=False)
    response = client.post(
        "/provisioning/credentials/crm-api/set/", {"secret": "s3cret-value", "back": "/provisioning/"}
    )
    assert replay_path(response) == "/provisioning/"
    assert "s3cret-value" not in str(dict(client.session.items()))


def test_an_unknown_id_is_refused_and_anonymous_users_sign_in(demo) -> None:
    client = admin_client(mfa=True)
    assert "no form to send again" in client.get("/stepup/replay/nope/", follow=True).content.decode()
    assert Client().get("/stepup/replay/nope/")["Location"].startswith("/accounts/login/")
