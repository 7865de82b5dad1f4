"""Hardening item 10: every API endpoint is rate-limited, and a revoked token raises an alert
wherever it is used."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.urls import get_resolver
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from agents import sessions
from agents.api import views
from agents.models import AgentKey, AgentSession, SecurityAlert
from governance.models import ApiToken
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db
REFUND = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "duplicate"}
RATES = {"agent": "1000/min", "session": "1000/min", "person": "1000/min", "address": "1000/min"}


@pytest.fixture(autouse=True)
def fresh_counters(one_rate_window) -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def test_every_api_view_has_a_throttle() -> None:
    api_views = [
        p.callback.view_class for p in get_resolver("agents.api.urls").url_patterns if hasattr(p.callback, "view_class")
    ]
    assert views.ActionView in api_views and len(api_views) == 6
    assert all(view.throttle_classes for view in api_views)
    with pytest.raises(TypeError, match="no throttle"):
        type("Unthrottled", (views.WardenAPIView,), {"throttle_classes": []})


def test_the_action_status_endpoint_is_rate_limited(start, monkeypatch) -> None:
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**RATES, "session": "3/min"})
    token = start()["token"]
    pending = (
        bearer(APIClient(), token)
        .post("/api/v1/authorize", {"action": "crm.issue_refund", "params": REFUND}, format="json")
        .json()
    )
    codes = [
        bearer(APIClient(), token).get(f"/api/v1/actions/{pending['action_request_id']}").status_code for _ in range(3)
    ]
    assert codes == [200, 200, 429]  # the authorize call counted as the first


def test_forged_tokens_are_rate_limited_per_address(db, monkeypatch) -> None:
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**RATES, "address": "5/min"})
    codes = [bearer(APIClient(), "wst_forged").get(f"/api/v1/actions/{uuid.uuid4()}").status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]


def test_audit_reads_are_rate_limited_per_person(compliance_token, monkeypatch) -> None:
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**RATES, "person": "2/min"})
    client = bearer(APIClient(), compliance_token)
    assert [client.get("/api/v1/audit/events").status_code for _ in range(3)] == [200, 200, 429]


def test_a_revoked_session_token_raises_an_alert_on_every_endpoint(start) -> None:
    started = start()
    old = started["token"]
    pending = (
        bearer(APIClient(), old)
        .post("/api/v1/authorize", {"action": "crm.get_customer", "params": {"customer_id": "C-1001"}}, format="json")
        .json()
    )
    sessions.reissue_token(AgentSession.objects.get(pk=started["session_id"]))  # the old token is revoked
    client = bearer(APIClient(), old)
    ar = pending["action_request_id"]
    calls = [
        lambda: client.get(f"/api/v1/actions/{ar}"),
        lambda: client.post(f"/api/v1/actions/{ar}/result", {"outcome": "succeeded"}, format="json"),
        lambda: client.post(f"/api/v1/sessions/{started['session_id']}/end"),
        lambda: client.post("/api/v1/authorize", {"action": "crm.get_customer", "params": {}}, format="json"),
    ]
    for number, call in enumerate(calls, start=1):
        assert call().status_code == 401
        alerts = SecurityAlert.objects.filter(kind=SecurityAlert.Kind.REVOKED_TOKEN)
        assert alerts.count() == number and alerts.filter(session_id=started["session_id"]).count() == number


def test_a_revoked_agent_key_raises_an_alert(agent_key) -> None:
    AgentKey.objects.update(revoked_at=timezone.now())
    response = bearer(APIClient(), agent_key).post("/api/v1/sessions/", {"workflow": "refund-triage"}, format="json")
    assert response.status_code == 401
    alert = SecurityAlert.objects.get(kind=SecurityAlert.Kind.REVOKED_TOKEN)
    assert alert.details["agent"] == "refund-bot" and agent_key not in str(alert.details)


def test_a_revoked_personal_token_raises_an_alert(compliance_token) -> None:
    ApiToken.objects.update(revoked_at=timezone.now())
    assert bearer(APIClient(), compliance_token).get("/api/v1/audit/events").status_code == 401
    alert = SecurityAlert.objects.get(kind=SecurityAlert.Kind.REVOKED_TOKEN)
    assert alert.details["user"] == "carol"


def test_the_limit_counts_every_request_of_the_window_at_any_rate(start, monkeypatch) -> None:
    """A counter per key and window, not a list of every request: a limit far above the
    traffic still counts each request, and the request past it is refused."""
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**RATES, "session": "40/min"})
    token = start()["token"]
    client = bearer(APIClient(), token)
    body = {"action": "crm.get_customer", "params": {"customer_id": "C-1001"}}
    codes = [client.post("/api/v1/authorize", body, format="json").status_code for _ in range(41)]
    assert codes == [200] * 40 + [429]


def test_unreachable_rate_limit_counters_refuse_with_a_clear_503(start, settings) -> None:
    """Fail closed, and say why: with WARDEN_CACHE_URL's Redis down nothing is decided."""
    from agents.models import ActionRequest

    token = start()["token"]
    settings.CACHES = {
        **settings.CACHES,
        "down": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"},
    }
    settings.RATELIMIT_USE_CACHE = "down"  # where django-ratelimit counts (a port nothing listens on)
    client = bearer(APIClient(), token)
    body = {"action": "crm.get_customer", "params": {"customer_id": "C-1001"}}
    answer = client.post("/api/v1/authorize", body, format="json")
    assert answer.status_code == 503, answer.content
    assert answer["Content-Type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:warden:problem:unavailable"
    assert "rate-limit counters" in answer.json()["detail"]
    assert not ActionRequest.objects.exists()
