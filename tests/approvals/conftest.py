from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from agents import runner
from agents.models import ActionRequest, AgentSession
from agents.services import session_queue_run
from governance.roles import set_roles


def make_user(username: str, *roles: str, email: str | None = None) -> Any:
    user = get_user_model().objects.create_user(username, email or f"{username}@example.com", "pw-not-used-123")
    set_roles(user, set(roles))
    return user


@pytest.fixture
def reviewer_alice(db) -> Any:
    return make_user("alice", "reviewer")


@pytest.fixture
def reviewer_bob(db) -> Any:
    return make_user("bob", "reviewer")


@pytest.fixture
def compliance_carol(db) -> Any:
    return make_user("carol", "compliance")


@pytest.fixture
def security_sam(db) -> Any:
    return make_user("sam", "security")


@pytest.fixture
def outsider_mallory(db) -> Any:
    return make_user("mallory")


def run_to_pause(agent: str, workflow: str, text: str, initiated_by: str) -> ActionRequest:
    session = session_queue_run(agent=agent, workflow=workflow, input=text, trigger="test", initiated_by=initiated_by)
    runner.claim(session.pk, from_state=AgentSession.RunState.QUEUED)
    runner.run(session.pk)
    return ActionRequest.objects.get(session=session, status="awaiting_approval")


@pytest.fixture
def pending_refund(demo, model_server, reviewer_alice) -> ActionRequest:
    """A refund paused at tier 3, initiated by someone who is not a reviewer here."""
    return run_to_pause("refund-bot", "refund-triage", "Handle T-2002", "user:dana")


def resume(ar: ActionRequest) -> AgentSession:
    """What the resume task does, in-process."""
    assert runner.claim(ar.session_id, from_state=AgentSession.RunState.PAUSED)
    runner.run(ar.session_id)
    return AgentSession.objects.get(pk=ar.session_id)
