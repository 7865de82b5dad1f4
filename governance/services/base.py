"""What every governance service shares: refusals, the step-up and role rules, and finishing
session terminations after the service's transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

from governance import signals
from governance.actors import Actor, Channel
from governance.models import AgentIdentity, Workflow


class Refused(Exception):
    """The change cannot be made; the message says why, in the words of the person who asked."""


def require_stepup(actor: Actor) -> None:
    """Provisioning needs a recent multi-factor sign-in. An operator at a shell (policy_apply,
    recorded as cli:<name>) and Warden itself are trusted by where they run, not by a cookie."""
    if actor.channel == Channel.UI and not actor.stepped_up:
        raise Refused("this change needs a recent multi-factor sign-in (step-up): sign in again with MFA")


def require_role(actor: Actor, role: str) -> None:
    if actor.channel == Channel.UI and role not in actor.roles:
        raise Refused(f"this change needs the {role} role")


_finishers: ContextVar[list[Callable[[], Any]] | None] = ContextVar("governance_finishers", default=None)


@contextmanager
def finishing() -> Iterator[None]:
    """Run what ending sessions left for after the transaction (use it outside transaction.atomic)."""
    if _finishers.get() is not None:  # nested service call: the outermost one finishes
        yield
        return
    pending: list[Callable[[], Any]] = []
    token = _finishers.set(pending)
    try:
        yield
    finally:
        _finishers.reset(token)
    for finish in pending:
        finish()


def withdraw_access(agent: AgentIdentity, *, workflow: Workflow | None, reason: str, actor: Actor) -> int:
    """End the agent's live sessions (on one workflow, or all), inside the caller's transaction."""
    ended = 0
    for _receiver, response in signals.access_withdrawn.send(
        sender=AgentIdentity, agent=agent, workflow=workflow, reason=reason, actor=actor
    ):
        # django-stubs types every receiver's response as str | None; the only receiver,
        # agents.sessions.end_withdrawn_sessions, returns (sessions ended, finisher).
        finish = cast("tuple[int, Callable[[], Any]] | None", response)
        if finish is None:
            continue
        count, callback = finish
        ended += count
        pending = _finishers.get()
        if pending is None:
            callback()
        else:
            pending.append(callback)
    return ended
