"""Schemathesis against /api/schema/, in process, with authentication: no 500s, and every
response matches the schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from config.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def keep_connection():
    """Like Django's test client: the WSGI handler must not close the test's database connection."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def credentials(demo, compliance_token, keep_connection):
    from agents import sessions
    from agents.api.auth import agent_key_create
    from governance.models import AgentIdentity

    _, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana", run_state="api")
    return {
        "agent": agent_key_create(AgentIdentity.objects.get(name="refund-bot")),
        "session": token,
        "person": compliance_token,
    }


def _token_for(path: str, credentials: dict[str, str]) -> str:
    if path.startswith("/api/v1/sessions/") and path.endswith("/"):
        return credentials["agent"]
    if path.startswith("/api/v1/audit"):
        return credentials["person"]
    return credentials["session"]


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_contract(case, credentials) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {_token_for(case.path, credentials)}"})
