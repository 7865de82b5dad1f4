from __future__ import annotations

import time
from typing import Any

import django_ratelimit.core
import pytest
from rest_framework.test import APIClient

from agents.api.auth import agent_key_create, api_token_create
from governance.models import AgentIdentity
from tests.approvals.conftest import make_user


@pytest.fixture
def agent_key(demo) -> str:
    return agent_key_create(AgentIdentity.objects.get(name="refund-bot"))


@pytest.fixture
def api() -> APIClient:
    return APIClient()


def bearer(client: APIClient, token: str) -> APIClient:
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def start(api, agent_key):
    def run(workflow: str = "refund-triage", **extra: Any) -> dict[str, Any]:
        response = bearer(APIClient(), agent_key).post(
            "/api/v1/sessions/", {"workflow": workflow, **extra}, format="json"
        )
        assert response.status_code == 201, response.content
        return response.json()

    return run


@pytest.fixture
def compliance_token(db) -> str:
    return api_token_create(make_user("carol", "compliance"), "siem export")


@pytest.fixture
def one_rate_window(monkeypatch) -> int:
    """The API's limits count per window (django-ratelimit's fixed windows): a test that counts
    to a limit runs inside one window, so that a window's edge never falls between its requests.
    Returns when the window ends (Unix time)."""
    end = int(time.time()) + 45
    monkeypatch.setattr(django_ratelimit.core, "_get_window", lambda value, period: end)
    return end
