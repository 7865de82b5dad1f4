from __future__ import annotations

from typing import Any

import pytest

from agents import sessions
from agents.models import AgentSession


@pytest.fixture
def start_session(demo):
    """Start a session of an agent on a workflow of the example policy; returns (session, token)."""

    def start(agent: str = "refund-bot", workflow: str = "refund-triage", **kwargs: Any) -> tuple[AgentSession, str]:
        return sessions.start(
            agent,
            workflow,
            kwargs.pop("trigger", "test"),
            kwargs.pop("initiated_by", "user:alice"),
            kwargs.pop("input", "help"),
            **kwargs,
        )

    return start


class Kinds:
    """The audit kinds written since the last mark(), in order."""

    def __init__(self) -> None:
        self.mark()

    def mark(self) -> None:
        from audit.models import AuditEvent

        # By id (insert order): events get their seq only when the sequencer runs.
        self.start = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    def __call__(self) -> list[str]:
        from audit.models import AuditEvent

        return list(AuditEvent.objects.filter(id__gt=self.start).order_by("id").values_list("kind", flat=True))


@pytest.fixture
def kinds(db) -> Kinds:
    return Kinds()
