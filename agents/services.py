"""Runtime services that other apps and commands call: queueing a run, the kill switch."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from agents import sessions
from agents.models import AgentSession
from audit.chain import label
from governance.models import AgentIdentity, Workflow


def session_queue_run(
    *,
    agent: AgentIdentity | str,
    workflow: Workflow | str,
    input: str,
    trigger: str,
    initiated_by: str,
    scope: dict[str, Any] | None = None,
    trigger_data: dict[str, Any] | None = None,
) -> AgentSession:
    """Start a session for the built-in runner and enqueue it after commit."""
    from agents.tasks import run_session

    with transaction.atomic():
        session, _token = sessions.start(
            agent,
            workflow,
            trigger,
            initiated_by,
            input,
            run_state=AgentSession.RunState.QUEUED,
            scope=scope,
            trigger_data=trigger_data,
        )
        # The runner mints its own token when it claims the session; this one is never used.
        AgentSession.objects.filter(pk=session.pk).update(conversation=[{"role": "user", "content": input}])
        transaction.on_commit(lambda: run_session.delay(str(session.pk)))
    session.refresh_from_db()
    return session


def agent_identity_suspend(*, agent: AgentIdentity, actor: Any, reason: str, auth: dict[str, Any] | None = None) -> int:
    """The kill switch: suspend the agent and end every live session of it. Returns how many.
    (governance.services.agent_identity_suspend does the work, for every entry point.)"""
    from governance.actors import Actor, as_actor
    from governance.services import agent_identity_suspend as suspend

    live = AgentSession.objects.filter(agent=agent, status__in=AgentSession.LIVE).count()
    who = Actor.for_user(actor, auth) if auth is not None and not isinstance(actor, str) else as_actor(actor)
    suspend(actor=who, agent=agent, reason=reason)
    return live


def session_revoke(*, session: AgentSession, actor: Any, reason: str) -> AgentSession:
    """End one session now: its token stops working and nothing it queued will execute. The
    reason is required and recorded whole in the audit event (the session row keeps its start)."""
    from governance.services import Refused

    reason = (reason or "").strip()
    if not reason:
        raise Refused("revoking a session needs a reason: it is recorded in the audit trail")
    return sessions.terminate(session, reason=f"revoked: {reason[:500]}", actor=label(actor))
