"""The state machines of ActionRequest and AgentSession: the only code that changes their status.

Every transition is declared in one of the two tables below and applied by one function
(`action_open`, `action_move`, `session_move`). Each one checks the source state under a row
lock, writes the new state, and appends the transition's audit event in the same transaction:
when the event cannot be written, the state does not change (no audit record, no action).
Signals are sent only after the transaction commits. A move that the table does not declare
raises IllegalTransition, so a path that tries to skip a state fails loudly instead of drifting.

The tables are documented, with the reason for each edge, in docs/lifecycle.md.
"""

from __future__ import annotations

import copy
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

import audit
from agents import prepared
from agents.models import ActionRequest, AgentSession, SessionToken
from audit.actors import GATEWAY

A = ActionRequest.Status
S = AgentSession.Status

RECEIVED = "received"  # a tool call before it has a row: the source state of action_open()

ACTION_TRANSITIONS: dict[str, frozenset[str]] = {
    RECEIVED: frozenset({A.DENIED, A.REFUSED, A.AWAITING_APPROVAL, A.ALLOWED, A.EXECUTING}),
    A.AWAITING_APPROVAL: frozenset({A.APPROVED, A.REJECTED, A.EXPIRED, A.CANCELLED}),
    # approved: Warden executes it (in-process sessions), or the external runtime does and reports
    A.APPROVED: frozenset({A.EXECUTING, A.REPORTED, A.FAILED, A.EXPIRED, A.CANCELLED}),
    A.ALLOWED: frozenset({A.REPORTED, A.FAILED, A.CANCELLED}),
    A.EXECUTING: frozenset({A.SUCCEEDED, A.FAILED}),
}
ACTION_FINAL = frozenset({A.DENIED, A.REFUSED, A.REJECTED, A.EXPIRED, A.CANCELLED, A.SUCCEEDED, A.FAILED, A.REPORTED})

ACTION_KINDS: dict[str, str] = {
    A.DENIED: "action.denied",
    A.REFUSED: "action.refused",
    A.AWAITING_APPROVAL: "action.awaiting_approval",
    A.ALLOWED: "action.allowed",
    A.EXECUTING: "action.executing",
    A.APPROVED: "action.released",
    A.REJECTED: "action.rejected",
    A.EXPIRED: "action.expired",
    A.CANCELLED: "action.cancelled",
    A.SUCCEEDED: "action.executed",
    A.FAILED: "action.failed",
    A.REPORTED: "action.reported",
}

# States in which a call used its grants (the evidence recertification reads): its events carry
# the grants, whoever executed it.
USED_GRANTS = frozenset({A.ALLOWED, A.EXECUTING, A.APPROVED, A.REPORTED, A.SUCCEEDED})

SESSION_TRANSITIONS: dict[str, frozenset[str]] = {
    S.ACTIVE: frozenset({S.AWAITING_APPROVAL, S.COMPLETED, S.TERMINATED, S.HANDED_OFF}),
    S.AWAITING_APPROVAL: frozenset({S.ACTIVE, S.COMPLETED, S.TERMINATED, S.HANDED_OFF}),
}
SESSION_KINDS: dict[str, str] = {
    S.ACTIVE: "session.resumed",
    S.AWAITING_APPROVAL: "session.paused",
    S.COMPLETED: "session.completed",
    S.TERMINATED: "session.terminated",
    S.HANDED_OFF: "session.handed_off",
}


class IllegalTransition(Exception):
    """A state change that the transition tables do not declare."""

    def __init__(self, what: str, source: str, target: str):
        super().__init__(f"{what}: {source} -> {target} is not a declared transition")
        self.source, self.target = source, target


def can_move(source: str, target: str) -> bool:
    return target in ACTION_TRANSITIONS.get(source, frozenset())


def _check(table: dict[str, frozenset[str]], source: str, target: str, what: str) -> None:
    if target not in table.get(source, frozenset()):
        raise IllegalTransition(what, source, target)


def _record_action_event(
    ar: ActionRequest,
    session: AgentSession,
    *,
    kind: str,
    actor: Any,
    outcome: str,
    details: dict[str, Any] | None,
) -> None:
    audit.record(kind, actor, **_action_event(ar, session, outcome=outcome, details=details))


def _action_event(
    ar: ActionRequest, session: AgentSession, *, outcome: str, details: dict[str, Any] | None
) -> dict[str, Any]:
    return dict(
        session=session,
        workflow=session.workflow,
        system=ar.system,
        action=ar.action,
        tier=ar.tier,
        outcome=outcome,
        # Every session event names its agent, whoever the actor was (a reviewer, the gateway).
        details={
            "action_request": str(ar.id),
            "agent": session.agent.name,
            **({"grants_used": ar.grants_used} if ar.status in USED_GRANTS else {}),
            **(details or {}),
        },
    )


def action_open(
    *,
    session: AgentSession,
    status: str,
    actor: Any,
    kind: str = "",
    outcome: str = "",
    details: dict[str, Any] | None = None,
    savepoint: bool = True,
    **fields: Any,
) -> ActionRequest:
    """received -> status: a tool call gets its row and its first event in one transaction.

    savepoint=False is for a caller whose own atomic block ends with any error raised here (a
    tool_use id seen before): it spares two round trips per call (decision 0015)."""
    _check(ACTION_TRANSITIONS, RECEIVED, status, "action request")
    with transaction.atomic(savepoint=savepoint):
        ar = ActionRequest.objects.create(session=session, status=status, **fields)
        _record_action_event(
            ar, session, kind=kind or ACTION_KINDS[status], actor=actor, outcome=outcome or status, details=details
        )
    ar.session = session
    return ar


def action_open_claiming(
    *,
    session: AgentSession,
    claim: tuple[str, list[Any]],
    status: str,
    actor: Any,
    details: dict[str, Any] | None = None,
    **fields: Any,
) -> ActionRequest | None:
    """action_open() conditional on a claim, on PostgreSQL, as one statement: `claim` is an
    UPDATE ... RETURNING 1 (the session row the call is decided against); only when it changed a
    row are the ActionRequest and its event inserted. Outside a transaction block the statement
    is one durable commit: claim, row and event together, or none of them (decision 0015).
    Returns None when the claim matched nothing. A tool_use id seen before raises IntegrityError,
    and then nothing was written."""
    from audit.chain import insert_from, prepare

    _check(ACTION_TRANSITIONS, RECEIVED, status, "action request")
    ar = ActionRequest(session=session, status=status, **fields)
    meta = ActionRequest._meta
    columns = [f for f in meta.concrete_fields]
    values = [f.get_db_prep_save(f.pre_save(ar, add=True), connection) for f in columns]
    event, event_values = prepare(
        ACTION_KINDS[status], actor, **_action_event(ar, session, outcome=status, details=details)
    )
    claim_sql, claim_params = claim
    sql = (
        f"WITH claimed AS ({claim_sql}), opened AS (INSERT INTO {meta.db_table} "
        f"({', '.join(str(f.column) for f in columns)}) SELECT {', '.join(['%s'] * len(columns))} FROM claimed "
        f"RETURNING 1) {insert_from('opened')}"
    )
    row = prepared.fetchone(connection, sql, [*claim_params, *values, *event_values])
    if row is None:
        return None
    event.pk = row[0]
    ar._state.adding, ar._state.db = False, connection.alias
    ar.session = session
    return ar


def action_move(
    ar: ActionRequest,
    target: str,
    *,
    actor: Any,
    session: AgentSession | None = None,
    kind: str = "",
    outcome: str = "",
    details: dict[str, Any] | None = None,
    locked: bool = False,
    **fields: Any,
) -> ActionRequest:
    """Move one ActionRequest to `target`, with its audit event, or raise IllegalTransition.

    With locked=True the caller holds the row lock, or a claim on the row (`executing`), and
    `ar` is current; otherwise the row is locked and read again here. Either way the update is
    conditional on the source state."""
    if locked and session is not None and connection.vendor == "postgresql":
        return _action_move_in_one_statement(
            ar, target, actor=actor, session=session, kind=kind, outcome=outcome, details=details, fields=fields
        )
    with transaction.atomic():
        if not locked:
            ar = ActionRequest.objects.select_for_update().get(pk=ar.pk)
        _check(ACTION_TRANSITIONS, ar.status, target, f"action request {ar.pk}")
        # Conditional on the source state: a row moved by someone else is never moved twice.
        moved = ActionRequest.objects.filter(pk=ar.pk, status=ar.status).update(
            status=target, updated_at=timezone.now(), **fields
        )
        if moved != 1:
            raise IllegalTransition(f"action request {ar.pk} (moved meanwhile)", ar.status, target)
        ar.status = target
        for name, value in fields.items():
            setattr(ar, name, value)
        if session is None:
            session = AgentSession.objects.select_related("agent", "workflow").get(pk=ar.session_id)
        _record_action_event(
            ar, session, kind=kind or ACTION_KINDS[target], actor=actor, outcome=outcome or target, details=details
        )
    ar.session = session
    return ar


def _action_move_in_one_statement(
    ar: ActionRequest,
    target: str,
    *,
    actor: Any,
    session: AgentSession,
    kind: str,
    outcome: str,
    details: dict[str, Any] | None,
    fields: dict[str, Any],
) -> ActionRequest:
    """action_move() for a row the caller holds, on PostgreSQL: the conditional UPDATE and the
    audit INSERT are one statement (a CTE), so the event is written exactly when the row moved,
    in one round trip, and outside a transaction block that statement is one durable commit
    (a result after the connector ran: decision 0015)."""
    from audit.chain import insert_from, prepare

    _check(ACTION_TRANSITIONS, ar.status, target, f"action request {ar.pk}")
    source = ar.status
    changes = {"status": target, "updated_at": timezone.now(), **fields}
    moved = copy.copy(ar)
    for name, value in changes.items():
        setattr(moved, name, value)
    event, event_values = prepare(
        kind or ACTION_KINDS[target], actor, **_action_event(moved, session, outcome=outcome or target, details=details)
    )
    meta = ActionRequest._meta
    columns: list[Any] = [meta.get_field(name) for name in changes]
    sql = (
        f"WITH moved AS (UPDATE {meta.db_table} SET {', '.join(f'{f.column} = %s' for f in columns)} "
        f"WHERE id = %s AND status = %s RETURNING 1) {insert_from('moved')}"
    )
    params = [f.get_db_prep_save(changes[f.name], connection) for f in columns]
    params += [meta.pk.get_db_prep_value(ar.pk, connection), source, *event_values]
    row = prepared.fetchone(connection, sql, params)
    if row is None:
        raise IllegalTransition(f"action request {ar.pk} (moved meanwhile)", source, target)
    event.pk = row[0]
    moved.session = session
    return moved


def action_cancel_open(session: AgentSession, *, actor: Any, reason: str) -> int:
    """Everything of a session that still waits (for a reviewer, or to be executed) is cancelled."""
    waiting = ActionRequest.objects.select_for_update().filter(
        session=session, status__in=[A.AWAITING_APPROVAL, A.APPROVED, A.ALLOWED]
    )
    count = 0
    for ar in waiting:
        action_move(
            ar, A.CANCELLED, actor=actor, session=session, locked=True, sealed_params="", details={"reason": reason}
        )
        count += 1
    return count


def session_move(
    session: AgentSession,
    target: str,
    *,
    actor: Any,
    kind: str = "",
    outcome: str = "",
    details: dict[str, Any] | None = None,
    locked: bool = False,
    **fields: Any,
) -> AgentSession:
    """Move one AgentSession to `target`, with its audit event, or raise IllegalTransition."""
    with transaction.atomic():
        if not locked:
            session = AgentSession.objects.select_for_update().select_related("agent", "workflow").get(pk=session.pk)
        _check(SESSION_TRANSITIONS, session.status, target, f"session {session.pk}")
        AgentSession.objects.filter(pk=session.pk).update(status=target, **fields)
        session.status = target
        for name, value in fields.items():
            setattr(session, name, value)
        audit.record(
            kind or SESSION_KINDS[target],
            actor,
            session=session,
            workflow=session.workflow,
            outcome=outcome or target,
            details={"agent": session.agent.name, **(details or {})},
        )
    return session


def session_pause(session: AgentSession, *, action_request: ActionRequest) -> AgentSession:
    """A tier 3 call waits for a reviewer: the session's clock stops until the decision."""
    return session_move(
        session,
        S.AWAITING_APPROVAL,
        actor=GATEWAY,
        locked=True,
        paused_at=timezone.now(),
        details={"action_request": str(action_request.pk)},
    )


def session_resume(session: AgentSession, *, actor: Any, action_request: ActionRequest) -> AgentSession:
    """A reviewer decided: the session goes on, and its expiry (and its tokens') moves by the pause."""
    now = timezone.now()
    new_expiry = session.expires_at + (now - (session.paused_at or now))
    SessionToken.objects.filter(session=session, revoked_at__isnull=True).update(expires_at=new_expiry)
    return session_move(
        session,
        S.ACTIVE,
        actor=actor,
        locked=True,
        paused_at=None,
        expires_at=new_expiry,
        details={"action_request": str(action_request.pk)},
    )
