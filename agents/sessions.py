"""Sessions and their short-lived tokens: start, verify, re-issue, terminate (with verification)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django.db import connections, models, router, transaction
from django.utils import timezone

import audit
from agents import lifecycle, prepared, signals
from agents.models import AgentSession, HumanHandoff, SecurityAlert, SessionToken
from audit.actors import RUNNER, SWEEPER, WARDEN
from governance import versions
from governance.models import AgentIdentity, Workflow

TOKEN_PREFIX = "wst_"

# What start() accepts either as an instance or by name.
_Named = TypeVar("_Named", AgentIdentity, Workflow)


class SessionRefused(Exception):
    """A session cannot start. The message says why, for people and for the audit trail."""


class TokenInvalid(Exception):
    """A token that does not authorize anything (unknown, expired, revoked, or its session is over)."""

    def __init__(self, reason: str, session: AgentSession | None = None, terminated: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.session = session
        self.terminated = terminated


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _resolve(model: type[_Named], value: _Named | str) -> _Named:
    if isinstance(value, model):
        return value
    try:
        return model.objects.get(name=value)
    except model.DoesNotExist:
        raise SessionRefused(f"unknown {model._meta.verbose_name} {value!r}") from None


def _new_token(session: AgentSession) -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    SessionToken.objects.create(session=session, token_hash=hash_token(token), expires_at=session.expires_at)
    return token


def intended_scope(workflow: Workflow) -> dict[str, Any]:
    return {
        "grants": [f"{mode}:{obj}" for obj, mode in workflow.grants.values_list("data_object__name", "mode")],
        "actions": {name: tier for name, tier in workflow.tiers.values_list("action_type__name", "tier")},
    }


def start(
    agent: AgentIdentity | str,
    workflow: Workflow | str,
    trigger: str,
    initiated_by: str,
    input: str = "",
    *,
    run_state: str = AgentSession.RunState.EXTERNAL,
    scope: dict[str, Any] | None = None,
    claimed_initiator: str = "",
    trigger_data: dict[str, Any] | None = None,
) -> tuple[AgentSession, str]:
    """Start a session and return it with its token. The token is shown only here.

    `claimed_initiator` is what an agent runtime says about who started it: kept in the audit
    event's details as a claim, never as the actor or the initiator (hardening, item 6).
    The session runs under `scope` narrowed by the workflow's scope template, bound to
    `trigger_data` and the input (governance.scopes.session_scope)."""
    claim = {"claimed_initiator": claimed_initiator} if claimed_initiator else {}
    agent = _resolve(AgentIdentity, agent)
    workflow = _resolve(Workflow, workflow)
    refusal = None
    agent.refresh_from_db()
    if agent.status != AgentIdentity.Status.ACTIVE:
        refusal = f"agent {agent.name!r} is {agent.status}"
    elif agent.recertification_overdue and agent.recertify_by is not None:  # overdue implies a date
        refusal = f"agent {agent.name!r} was due for recertification on {agent.recertify_by.isoformat()}"
    elif workflow.archived_at is not None:
        refusal = f"workflow {workflow.name!r} is archived (its policy file left it out): it starts no session"
    elif not agent.workflows.filter(pk=workflow.pk).exists():
        refusal = f"agent {agent.name!r} is not assigned to workflow {workflow.name!r}"
    bound: dict[str, str] = {}
    if refusal is None and (scope or workflow.scope_template):
        from governance.scopes import ScopeInvalid, session_scope

        try:
            scope, bound = session_scope(
                explicit=scope,
                template=workflow.scope_template,
                trigger_data=trigger_data,
                input=input,
                workflow_actions=set(workflow.tiers.values_list("action_type__name", flat=True)),
            )
        except ScopeInvalid as exc:
            refusal = str(exc)
    if refusal:
        audit.record(
            "session.refused",
            initiated_by,
            workflow=workflow,
            outcome="refused",
            details={"agent": agent.name, "trigger": trigger, "reason": refusal, **claim},
        )
        raise SessionRefused(refusal)
    now = timezone.now()
    with transaction.atomic():
        session = AgentSession.objects.create(
            agent=agent,
            workflow=workflow,
            workflow_version=workflow.version,
            trigger=trigger,
            initiated_by=initiated_by,
            input=input,
            run_state=run_state,
            scope=scope or {},
            expires_at=now + timedelta(seconds=workflow.max_session_seconds),
        )
        token = _new_token(session)
        audit.record(
            "session.started",
            initiated_by,
            session=session,
            workflow=workflow,
            outcome="started",
            details={
                "agent": agent.name,
                "trigger": trigger,
                "workflow_version": workflow.version,
                "expires_at": session.expires_at.isoformat(),
                "scope": intended_scope(workflow),
                **({"session_scope": scope} if scope else {}),
                **({"scope_bound": bound} if bound else {}),
                **({"trigger_data": trigger_data} if trigger_data else {}),
                **claim,
            },
        )
    _provision_database_roles(session)
    return session, token


def _provision_database_roles(session: AgentSession) -> None:
    """Per-session database credentials, made after the session exists (the sweeper reaps any
    role whose session never came to be). A failure ends the session before it can act."""
    from agents.connectors.postgres import provision_session_roles

    try:
        roles = provision_session_roles(session)
    except Exception as exc:  # noqa: BLE001 - the session must not run half-provisioned
        terminate(session, reason="database credentials could not be made", actor=WARDEN)
        raise SessionRefused(f"the session's database credentials could not be made ({type(exc).__name__})") from None
    if roles:
        audit.record(
            "session.credentials_issued",
            WARDEN,
            session=session,
            workflow=session.workflow,
            outcome="issued",
            details={"database_roles": roles, "valid_until": session.expires_at.isoformat()},
        )


def reissue_token(session: AgentSession) -> str:
    """A fresh token for the runner that has just claimed the session; earlier tokens stop working."""
    with transaction.atomic():
        now = timezone.now()
        SessionToken.objects.filter(session=session, revoked_at__isnull=True).update(revoked_at=now)
        token = _new_token(session)
        audit.record("session.token_issued", RUNNER, session=session, workflow=session.workflow, outcome="issued")
    return token


def check_token_row(row: SessionToken | None, now: Any = None) -> str | None:
    """Why this token row authorizes nothing, or None when it is good."""
    now = now or timezone.now()
    if row is None:
        return "unknown session token"
    if row.revoked_at is not None:
        return "the session token has been revoked"
    if row.expires_at <= now:
        return "the session token has expired"
    return None


# The token check runs on every tool call, so it is one narrow query whose SQL is built once
# (the ORM's query compilation cost more than the database did). It reads the token, its
# session without the conversation and the other large columns (loaded on access if a
# caller wants them), the agent, the workflow and the policy version (decision 0015).
_LAZY_SESSION_FIELDS = frozenset({"conversation", "clear_after_step", "pending_tool_uses", "input", "final_answer"})
_READS: tuple[tuple[type[models.Model], str, list[Any]], ...] = (
    (SessionToken, "t", list(SessionToken._meta.concrete_fields)),
    (AgentSession, "s", [f for f in AgentSession._meta.concrete_fields if f.name not in _LAZY_SESSION_FIELDS]),
    (AgentIdentity, "a", list(AgentIdentity._meta.concrete_fields)),
    (Workflow, "w", list(Workflow._meta.concrete_fields)),
)
# By database alias: the SQL; the columns that have converters, with them (on PostgreSQL few
# do, so the loop below skips the rest); each model's attribute names and columns' slice.
_built: dict[str, tuple[str, list[tuple[int, list[Any], Any]], list[tuple[Any, list[str], slice]]]] = {}


def _token_sql(conn: Any) -> str:
    q = conn.ops.quote_name
    columns = ", ".join(f"{alias}.{q(f.column)}" for _, alias, fields in _READS for f in fields)
    return (
        f"SELECT {columns}, ({versions.CURRENT_SQL}) "
        f"FROM {q(SessionToken._meta.db_table)} t "
        f"JOIN {q(AgentSession._meta.db_table)} s ON s.{q('id')} = t.{q('session_id')} "
        f"JOIN {q(AgentIdentity._meta.db_table)} a ON a.{q('id')} = s.{q('agent_id')} "
        f"JOIN {q(Workflow._meta.db_table)} w ON w.{q('id')} = s.{q('workflow_id')} "
        f"WHERE t.{q('token_hash')} = %s"
    )


def _build(conn: Any) -> tuple[str, list[tuple[int, list[Any], Any]], list[tuple[Any, list[str], slice]]]:
    conversions, models_at, at = [], [], 0
    for model, alias, fields in _READS:
        for field in fields:
            column = field.get_col(alias)
            converters = conn.ops.get_db_converters(column) + field.get_db_converters(conn)
            if converters:
                conversions.append((at, converters, column))
            at += 1
        models_at.append((model, [f.attname for f in fields], slice(at - len(fields), at)))
    built = _built[conn.alias] = (_token_sql(conn), conversions, models_at)
    return built


def _token_row(token_hash: str) -> SessionToken | None:
    """The token row with its session, agent and workflow attached; the session carries the
    policy version read in the same statement (`policy_version`)."""
    conn = connections[router.db_for_read(SessionToken)]
    built = _built.get(conn.alias) or _build(conn)
    sql, conversions, models_at = built
    row = prepared.fetchone(conn, sql, [token_hash])
    if row is None:
        return None
    values = list(row)
    for at, converters, column in conversions:
        value = values[at]
        if value is not None:
            for converter in converters:
                value = converter(value, column, conn)
            values[at] = value
    instances = [model.from_db(conn.alias, attnames, values[columns]) for model, attnames, columns in models_at]
    token_row, session, agent, workflow = instances
    session.agent = agent
    session.workflow = workflow
    setattr(session, "policy_version", values[-1])  # noqa: B010 - read by the gateway's caches
    token_row.session = session
    return token_row


# How long a runtime may still read the outcome of its own calls with the token of a session
# that has ended (a rejection handed it to a person, a tier 4 attempt, its time limit).
ENDED_SESSION_READ_SECONDS = 3600


def ended_with_its_session(row: SessionToken | None, session: AgentSession | None, now: Any) -> bool:
    """The token stopped working because its session ended, not because it was replaced or
    revoked: end() revokes the tokens at the very instant it records the end."""
    return (
        row is not None
        and session is not None
        and not session.is_live
        and session.ended_at is not None
        and row.revoked_at == session.ended_at
        and now - session.ended_at <= timedelta(seconds=ENDED_SESSION_READ_SECONDS)
    )


def verify_token(token: Any, *, paused_ok: bool = False, ended_ok: bool = False) -> tuple[AgentSession, SessionToken]:
    """The live session a token belongs to, read from the database; raise TokenInvalid otherwise.
    With paused_ok, a session that waits for a reviewer counts as live (the gateway still
    decides calls made then: a tier 4 attempt ends it). With ended_ok (status reads only), the
    token of a session that ended within the last hour still reads, and raises no alert: the
    runtime learns what became of its call (a rejection, say) instead of a revoked-token alarm."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise TokenInvalid("malformed session token")
    row = _token_row(hash_token(token))
    now = timezone.now()
    session = row.session if row is not None else None
    # The clock stops while a session waits for a reviewer (its expiry and its tokens' move by
    # the pause when it resumes), so a paused session's token does not expire meanwhile.
    paused = session is not None and session.status == AgentSession.Status.AWAITING_APPROVAL
    problem = check_token_row(row, session.paused_at if paused and session and session.paused_at else now)
    if problem is not None and ended_ok and ended_with_its_session(row, session, now):
        assert row is not None and session is not None
        return session, row
    if problem is not None:
        if row is not None and row.revoked_at is not None and session is not None:
            raise_alert(
                SecurityAlert.Kind.REVOKED_TOKEN, f"a revoked token of session {session.id} was used", session=session
            )
        raise TokenInvalid(problem, session)
    assert row is not None and session is not None  # check_token_row found no problem
    if session.status != AgentSession.Status.ACTIVE and not (paused_ok and session.is_live):
        raise TokenInvalid(f"the session is {session.status.replace('_', ' ')}", session)
    if session.expires_at <= (session.paused_at if paused and session.paused_at else now):
        expire(session)
        raise TokenInvalid("the session ran past its time limit and was terminated", session, terminated=True)
    if session.agent.status != AgentIdentity.Status.ACTIVE:
        raise TokenInvalid(f"agent {session.agent.name!r} is {session.agent.status}", session)
    return session, row


def raise_alert(
    kind: str,
    summary: str,
    *,
    session: AgentSession | None = None,
    severity: str = "high",
    details: dict[str, Any] | None = None,
) -> SecurityAlert:
    with transaction.atomic():
        alert = SecurityAlert.objects.create(
            kind=kind,
            summary=summary[:500],
            severity=severity,
            session=session,
            agent=session.agent if session else None,
            details=details or {},
        )
        audit.record(
            "alert.raised",
            WARDEN,
            session=session or "",
            workflow=session.workflow if session else "",
            outcome=kind,
            details={"alert_id": alert.id, "summary": alert.summary, "severity": severity},
        )
        transaction.on_commit(lambda: signals.alert_raised.send(SecurityAlert, alert=alert))
    return alert


def expire(session: AgentSession) -> AgentSession:
    """End a session that overran its time limit, as an anomaly."""
    raise_alert(
        SecurityAlert.Kind.SESSION_OVERRUN,
        f"session {session.id} ran past its time limit",
        session=session,
        severity="medium",
    )
    return terminate(session, reason="timeout", actor=SWEEPER)


def end(
    session: AgentSession,
    *,
    reason: str,
    actor: Any = WARDEN,
    status: str = AgentSession.Status.TERMINATED,
    final_answer: str | None = None,
) -> AgentSession:
    """The transactional half of ending a session (call it inside the transaction of whatever
    ended it, then after_end() once that has committed): the session moves to its final state
    with its audit event, its tokens are revoked, its context wiped, and what waits is cancelled."""
    now = timezone.now()
    with transaction.atomic():
        locked = AgentSession.objects.select_for_update().select_related("agent", "workflow").get(pk=session.pk)
        if not locked.is_live:
            return locked  # ended already: nothing to do, and after_end() is not needed
        SessionToken.objects.filter(session=locked, revoked_at__isnull=True).update(revoked_at=now)
        cancelled = lifecycle.action_cancel_open(locked, actor=actor, reason=reason)
        extra = {"final_answer": final_answer} if final_answer is not None else {}
        locked = lifecycle.session_move(
            locked,
            status,
            actor=actor,
            locked=True,
            termination_reason=reason[:64],
            ended_at=now,
            run_state=AgentSession.RunState.DONE,
            conversation=[],
            clear_after_step=[],
            pending_tool_uses=[],
            details={"reason": reason, "cancelled_actions": cancelled},
            **extra,
        )
    setattr(locked, "just_ended", True)  # noqa: B010 - read by after_end_if_needed()
    return locked


def after_end_if_needed(session: AgentSession) -> AgentSession:
    """after_end() for a session that end() has just ended (and not for one that was over already)."""
    return after_end(session) if getattr(session, "just_ended", False) else session


def after_end(session: AgentSession) -> AgentSession:
    """After the end has committed: drop the session's database roles, then check that the
    token fails and the context is empty before calling the termination verified."""
    try:
        from agents.connectors.postgres import drop_session_roles

        drop_session_roles(session)
    except Exception:  # noqa: BLE001 - verification below reports it, and the sweeper retries
        pass
    _verify_termination(session)
    return AgentSession.objects.select_related("agent", "workflow").get(pk=session.pk)


def terminate(
    session: AgentSession,
    *,
    reason: str,
    actor: Any = WARDEN,
    status: str = AgentSession.Status.TERMINATED,
    final_answer: str | None = None,
) -> AgentSession:
    """End a session for any reason, with verified termination."""
    return after_end_if_needed(end(session, reason=reason, actor=actor, status=status, final_answer=final_answer))


def _verify_termination(session: AgentSession) -> None:
    rows = list(SessionToken.objects.filter(session=session))
    tokens_fail = all(check_token_row(row) is not None for row in rows)
    fresh = AgentSession.objects.get(pk=session.pk)
    context_empty = not fresh.conversation and not fresh.clear_after_step and not fresh.pending_tool_uses
    roles_gone = _database_roles_gone(session)
    with transaction.atomic():
        if tokens_fail and context_empty and roles_gone:
            AgentSession.objects.filter(pk=session.pk).update(termination_verified=True)
            audit.record(
                "session.termination_verified",
                WARDEN,
                session=session,
                workflow=session.workflow,
                outcome="verified",
            )
        else:
            audit.record(
                "session.termination_unverified",
                WARDEN,
                session=session,
                workflow=session.workflow,
                outcome="unverified",
                details={"tokens_fail": tokens_fail, "context_empty": context_empty, "database_roles_gone": roles_gone},
            )
    if not (tokens_fail and context_empty and roles_gone):
        raise_alert(
            SecurityAlert.Kind.ANOMALY, f"termination of session {session.id} could not be verified", session=session
        )


def _database_roles_gone(session: AgentSession) -> bool:
    from agents.connectors.postgres import role_can_log_in
    from agents.models import SessionDatabaseRole

    records = list(SessionDatabaseRole.objects.filter(session=session))
    try:
        return all(r.dropped_at is not None and not role_can_log_in(r) for r in records)
    except Exception:  # noqa: BLE001 - cannot check: not verified
        return False


def hand_off(session: AgentSession, *, trigger: str, context: dict[str, Any]) -> HumanHandoff:
    """Give the session to a person: record what they receive, then end the session."""
    with transaction.atomic():
        handoff = HumanHandoff.objects.create(session=session, trigger=trigger[:255], context=context)
        audit.record(
            "handoff.created",
            WARDEN,
            session=session,
            workflow=session.workflow,
            outcome="open",
            details={"handoff_id": handoff.id, "trigger": trigger[:255]},
        )
        transaction.on_commit(lambda: signals.handoff_created.send(HumanHandoff, handoff=handoff))
        ended = end(session, reason=f"handed off: {trigger}"[:64], status=AgentSession.Status.HANDED_OFF)
    after_end_if_needed(ended)
    return handoff


def end_withdrawn_sessions(
    sender: Any, *, agent: AgentIdentity, workflow: Workflow | None, reason: str, actor: Any, **_: Any
) -> tuple[int, Callable[[], None]]:
    """Governance withdrew access (governance.signals.access_withdrawn): end the agent's live
    sessions in the caller's transaction, and finish (roles, verification) after it."""
    live = AgentSession.objects.select_for_update().filter(agent=agent, status__in=AgentSession.LIVE)
    if workflow is not None:
        live = live.filter(workflow=workflow)
    ended = [end(session, reason=reason[:64], actor=actor) for session in live]

    def finish() -> None:
        for session in ended:
            after_end_if_needed(session)

    return len(ended), finish
