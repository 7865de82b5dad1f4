"""No form sends a person off the site: the `back` a form posts (alerts, provisioning, the
step-up sign-in it leads to) and the login's `next` are followed only to this host
(governance.oidc.safe_next, the one check every such redirect uses)."""

from __future__ import annotations

import pytest
from django.test import Client

from agents import sessions
from agents.models import SecurityAlert
from tests.approvals.conftest import make_user
from tests.approvals.test_alerts import client_for
from tests.approvals.test_provisioning import admin_client

pytestmark = pytest.mark.django_db

OFF_SITE = ["https://evil.example/phish", "//evil.example/phish", "http:\\\\evil.example", " https://evil.example"]


def _alert() -> SecurityAlert:
    return sessions.raise_alert(SecurityAlert.Kind.TIER4_ATTEMPT, "tier 4 attempt")


@pytest.mark.parametrize("back", OFF_SITE)
def test_an_alert_update_does_not_follow_an_off_site_back(back: str) -> None:
    alert = _alert()
    response = client_for(make_user("sam", "security"), mfa=True).post(
        f"/alerts/{alert.pk}/acknowledged/", {"back": back}
    )
    assert response.status_code == 302 and "evil.example" not in response["Location"], response["Location"]
    assert response["Location"] == "/alerts/"


def test_an_alert_update_follows_a_back_on_this_site() -> None:
    alert = _alert()
    response = client_for(make_user("sam", "security"), mfa=True).post(
        f"/alerts/{alert.pk}/acknowledged/", {"back": f"/alerts/{alert.pk}/"}
    )
    assert response["Location"] == f"/alerts/{alert.pk}/"


@pytest.mark.parametrize("back", OFF_SITE)
def test_a_refused_provisioning_change_does_not_follow_an_off_site_back(demo, back: str) -> None:
    response = admin_client(mfa=True).post("/provisioning/agents/refund-bot/bogus/", {"back": back})
    assert response.status_code == 302 and "evil.example" not in response["Location"], response["Location"]
    assert response["Location"] == "/provisioning/"


@pytest.mark.parametrize("back", OFF_SITE)
def test_the_step_up_sign_in_does_not_carry_an_off_site_back(demo, back: str) -> None:
    response = admin_client(mfa=False).post("/provisioning/agents/refund-bot/suspended/", {"back": back})
    assert response.status_code == 302 and "evil.example" not in response["Location"], response["Location"]


@pytest.mark.parametrize("next_url", OFF_SITE)
def test_the_login_does_not_follow_an_off_site_next(next_url: str, settings) -> None:
    page = Client().get("/accounts/login/", {"next": next_url})
    assert "evil.example" not in page.content.decode()
