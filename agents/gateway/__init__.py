"""The enforcement gateway: the single path of every tool call (DESIGN.md, "the hot path").

`authorize()` makes one decision per call, in a fixed order (docs/lifecycle.md):

    token -> replay check -> decide (access map -> schema -> tier -> destinations) -> tier 4
    wins over every other outcome -> paused session -> scope -> refused destination -> tier 3
    -> allow

and applies it through the lifecycle module, which writes each state change together with its
audit event. The in-process runner and the decision API call the same function; the only
difference is who executes an allowed call (Warden with execute=True, the external runtime
with execute=False). What happens after a reviewer decides lives in `agents.gateway.execution`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Field
from django.utils import timezone
from prometheus_client import Counter

import audit
from agents import context, destinations, lifecycle, sessions, signals
from agents.models import ActionRequest, AgentSession, SecurityAlert, SessionToken
from audit.actors import GATEWAY
from audit.canonical import params_hash
from governance import crypto, versions
from governance.facts import SessionFacts
from governance.models import AgentIdentity, Sensitivity, Tier, Workflow
from governance.policy import Decision, WorkflowSnapshot, decide, snapshot

Status = ActionRequest.Status


class Outcome(StrEnum):
    """What the gateway answers for one tool call."""

    ALLOW = "allow"
    ALLOW_NOTIFIED = "allow_notified"
    PENDING = "pending_approval"
    DENY = "deny"
    TERMINATED = "session_terminated"


# The names callers have always used.
ALLOW, ALLOW_NOTIFIED, PENDING, DENY, TERMINATED = (
    Outcome.ALLOW,
    Outcome.ALLOW_NOTIFIED,
    Outcome.PENDING,
    Outcome.DENY,
    Outcome.TERMINATED,
)

HUMAN_ONLY = Tier.HUMAN_ONLY
APPROVE = Tier.APPROVE
NOTIFY = Tier.NOTIFY


@dataclass(frozen=True)
class GatewayResult:
    decision: str
    tier: int | None
    reason: str
    action_request_id: str | None = None
    status: str = ""
    result: Any = None  # the model's view of the connector result, after context rules
    error: str = ""

    @property
    def executed(self) -> bool:
        return self.status == Status.SUCCEEDED

    @property
    def is_error(self) -> bool:
        return self.decision in (DENY, TERMINATED) or self.status in (
            Status.FAILED,
            Status.REJECTED,
            Status.EXPIRED,
            Status.CANCELLED,
        )


_SNAPSHOTS: dict[int, tuple[tuple[Any, ...], WorkflowSnapshot]] = {}


def _snapshot(workflow: Workflow, policy_version: int | None = None) -> WorkflowSnapshot:
    """decide() needs the workflow in memory. The snapshot is kept per process and rebuilt when
    the policy version moves (every governance change moves it, in its own transaction: decision
    0015). Callers that read the version with the token pass it; others cost one query."""
    version = policy_version if policy_version is not None else versions.current()
    key = (workflow.version, workflow.updated_at, version)
    cached = _SNAPSHOTS.get(workflow.pk)
    if cached and cached[0] == key and version is not None:
        return cached[1]
    snap = snapshot(workflow)
    _SNAPSHOTS[workflow.pk] = (key, snap)
    return snap


def snapshot_for(session: AgentSession) -> WorkflowSnapshot:
    """The snapshot of a session's workflow, at the policy version its token check read."""
    return _snapshot(session.workflow, getattr(session, "policy_version", None))


# Keyed by str: ActionRequest.status is read back from the database as plain text.
_DECISION_BY_STATUS: dict[str, Outcome] = {
    Status.AWAITING_APPROVAL: PENDING,
    Status.APPROVED: PENDING,
    Status.DENIED: DENY,
    Status.REJECTED: DENY,
    Status.EXPIRED: DENY,
    Status.CANCELLED: DENY,
    Status.REFUSED: TERMINATED,
}


def result_of(ar: ActionRequest, decision: str | None = None) -> GatewayResult:
    if decision is None:
        decision = _DECISION_BY_STATUS.get(ar.status, ALLOW_NOTIFIED if ar.tier == NOTIFY else ALLOW)
    return GatewayResult(decision, ar.tier, ar.reason, str(ar.id), ar.status, ar.result, ar.error)


DECISIONS = Counter("warden_decisions_total", "Tool-call decisions by tier and outcome", ["tier", "decision"])


def authorize(
    token: Any,
    action: Any,
    params: Any,
    *,
    tool_use_id: str = "",
    execute: bool = True,
    verified_session: AgentSession | None = None,
) -> GatewayResult:
    """Decide one tool call and act on the tier. With execute=False (external runtimes), an
    allowed call is returned as `allow` for the caller to execute and report.

    `verified_session` is for the API, whose authentication has just run verify_token on this
    very token in the same request; everyone else passes the token alone."""
    result = _authorize(token, action, params, tool_use_id=tool_use_id, execute=execute, session=verified_session)
    DECISIONS.labels(tier=str(result.tier or "none"), decision=result.decision).inc()
    return result


def _authorize(
    token: Any, action: Any, params: Any, *, tool_use_id: str, execute: bool, session: AgentSession | None
) -> GatewayResult:
    try:
        if session is None:
            # A paused session is still decided: a tier 4 attempt while it waits ends it.
            session = sessions.verify_token(token, paused_ok=True)[0]
    except sessions.TokenInvalid as exc:
        return deny_without_session(action, exc)
    call = _Call.build(session, action, params, str(tool_use_id or "")[:128])
    try:
        return _act(call, execute=execute)
    except IntegrityError:
        # The tool_use id was seen before in this session (the unique constraint caught it).
        seen = ActionRequest.objects.filter(session=session, tool_use_id=call.tool_use_id).first()
        if seen is None or not call.tool_use_id:
            raise
        if seen.action == call.fields["action"] and seen.params_hash == call.digest and call.digest:
            return _replay(seen, session, params)
        return _replay_mismatch(call, seen)


def deny_without_session(action: Any, exc: sessions.TokenInvalid) -> GatewayResult:
    """A call whose token authorizes nothing: refused and audited (whoever received it)."""
    session = exc.session
    audit.record(
        "action.denied",
        session.agent if session else "unknown",
        session=session or "",
        workflow=session.workflow if session else "",
        action=_visible(str(action))[:128],
        outcome="denied",
        details={"reason": exc.reason, **({"agent": session.agent.name} if session else {})},
    )
    return GatewayResult(TERMINATED if exc.terminated else DENY, None, exc.reason)


MAX_SAFE_INTEGER = 2**53 - 1  # beyond it, JSON numbers lose precision between parsers


def _unstorable(value: Any) -> str | None:
    """Why a JSON value cannot be stored and hashed as given, or None. Text with NUL or a lone
    surrogate (PostgreSQL and UTF-8 refuse them), numbers that are not finite or beyond the
    safe integer range (JSON has no such numbers; the parameter hash cannot represent them)."""
    if isinstance(value, str):
        if "\x00" in value:
            return "NUL characters"
        if any("\ud800" <= c <= "\udfff" for c in value):
            return "lone surrogates"
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return "an integer beyond the safe range" if abs(value) > MAX_SAFE_INTEGER else None
    if isinstance(value, float):
        return "a number that is not finite" if value != value or value in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return next((p for k, v in value.items() for p in (_unstorable(k), _unstorable(v)) if p), None)
    if isinstance(value, (list, tuple)):
        return next((p for v in value if (p := _unstorable(v))), None)
    return None


def _visible(text: str) -> str:
    """Text that can be stored: NUL and lone surrogates made visible as U+FFFD."""
    return "".join("\ufffd" if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in text)


def _safe_hash(params: Any) -> str:
    try:
        return params_hash(params)
    except Exception:  # noqa: BLE001 - not JSON: decide() refuses it
        return ""


@dataclass
class _Call:
    """One tool call with its decision and what will be stored of it."""

    session: AgentSession
    params: Any
    tool_use_id: str
    decision: Decision
    digest: str
    spec: Any
    snap: WorkflowSnapshot | None
    fields: dict[str, Any]
    facts: SessionFacts | None = None

    @classmethod
    def build(cls, session: AgentSession, action: Any, params: Any, tool_use_id: str) -> _Call:
        snap = snapshot_for(session)
        facts = session_facts(session)
        # decide() is pure and reads any value: even a call that cannot be stored as given is
        # decided, so that a tier 4 attempt ends its session whatever its parameters hold.
        decision = decide(snap, action, params, facts=facts)
        rule = snap.tiers.get(action) if isinstance(action, str) else None
        if decision.tier is None and rule is not None and rule.tier >= HUMAN_ONLY:
            # Tier 4 wins over every other outcome: calling a human-only action is the attempt,
            # whatever its parameters (a probe with parameters that fail the schema included).
            decision = Decision(HUMAN_ONLY, False, f"human-only action ({decision.reason})", base_tier=rule.tier)
        spec = snap.actions.get(action) if isinstance(action, str) else None
        problem = _unstorable(action) or _unstorable(params) or _unstorable(tool_use_id)
        if problem:
            reason = f"the action name or parameters contain {problem}, which Warden cannot store"
            if decision.tier is None or decision.tier < HUMAN_ONLY:
                decision = Decision(None, False, reason)
            fields: dict[str, Any] = {
                "tool_use_id": _visible(tool_use_id),
                "action": _visible(str(action))[:128],
                "system": spec.system if spec else "",
                "tier": decision.tier,
                "reason": decision.reason if decision.tier else reason,
                "grants_used": [list(g) for g in decision.grants_used],
                "params_hash": "",
                "quorum": decision.quorum,
                "params": {"_invalid": problem},
            }
            return cls(session, params, fields["tool_use_id"], decision, "", spec, snap, fields, facts)
        stored = context.persistable_params(params, spec.data_objects if spec else (), context.load_policy())
        digest = _safe_hash(params)
        fields = {
            "tool_use_id": tool_use_id,
            "action": str(action)[:128],
            "system": spec.system if spec else "",
            "tier": decision.tier,
            "reason": decision.reason,
            "grants_used": [list(g) for g in decision.grants_used],
            "params_hash": digest,
            "quorum": decision.quorum,
            "params": stored if isinstance(stored, dict) else {"_invalid": type(params).__name__},
        }
        return cls(session, params, tool_use_id, decision, digest, spec, snap, fields, facts)


def _act(call: _Call, *, execute: bool) -> GatewayResult:
    """The fixed order of outcomes. Tier 4 wins over every other one, in any session state."""
    tier = call.decision.tier
    if tier is None:
        return _enforce(call, DENY, call.decision.reason, execute=execute)
    if tier >= HUMAN_ONLY:
        return _refuse_tier4(call)
    if call.session.status != AgentSession.Status.ACTIVE:
        return _deny(call, f"the session is {call.session.status.replace('_', ' ')}: it waits for a reviewer")
    out_of_scope = _scope_problem(call)
    if out_of_scope:
        reason = f"outside the session's scope: {out_of_scope}"
        if call.snap is None or call.snap.out_of_scope != str(APPROVE):
            return _enforce(call, DENY, reason, kind="action.out_of_scope", execute=execute)
        call, tier = _raised(call, APPROVE, f"{reason}; the workflow sends such calls to a person (tier 3)"), APPROVE
    # decide() checked the destinations (governance.destinations): one decision for every path.
    if call.decision.egress_refused:
        return _enforce(call, DENY, call.decision.reason, kind="egress.refused", execute=execute)
    if tier == APPROVE:
        return _enforce(call, PENDING, call.decision.reason, execute=execute)
    return _allow(call, execute=execute)


def _enforce(call: _Call, outcome: Outcome, reason: str, *, kind: str = "", execute: bool) -> GatewayResult:
    """Apply a refusal or a queueing decided below tier 4. This is the one place where a
    workflow in `log_only` mode lets the call proceed instead (tier 4 never comes here): the
    decision is still made and audited, with what it would have been, so a team can try a
    policy on live traffic before enforcing it."""
    if call.snap is not None and call.snap.mode == Workflow.PolicyMode.LOG_ONLY and call.spec and call.digest:
        would = {"outcome": str(outcome), "tier": call.decision.tier, "reason": reason, "kind": kind}
        effective = NOTIFY if call.decision.tier == NOTIFY else Tier.AUTOMATED
        verdict = "refused" if outcome == DENY else "queued for approval"
        logged = _raised(call, effective, f"log only: would have been {verdict} ({reason})")
        return _allow(logged, execute=execute, details={"log_only": would})
    if kind == "egress.refused":
        return _refuse_egress(call, reason)
    if outcome == PENDING:
        return _queue_for_approval(call)
    return _deny(call, reason, kind=kind)


def _raised(call: _Call, tier: int, reason: str) -> _Call:
    """The call with another effective tier and reason (what is stored and answered)."""
    decision = replace(call.decision, tier=tier, allowed=tier < HUMAN_ONLY, reason=reason)
    return replace(call, decision=decision, fields={**call.fields, "tier": tier, "reason": reason})


_SCOPES: dict[Any, Any] = {}


def _scope_problem(call: _Call) -> str | None:
    """A session's scope only narrows: it is checked after the workflow allowed the call."""
    from agents.scopes import ScopeInvalid, compile_scope

    raw = call.session.scope
    if not raw or call.snap is None:
        return None
    key = (call.session.pk, call.snap.version)
    scope = _SCOPES.get(key)
    if scope is None:
        try:
            scope = compile_scope(raw, workflow_actions=frozenset(call.snap.tiers))
        except ScopeInvalid as exc:  # the workflow changed under the scope: fail closed
            return f"the scope no longer fits the workflow ({exc})"
        if len(_SCOPES) > 1000:
            _SCOPES.clear()
        _SCOPES[key] = scope
    return scope.problem(call.fields["action"], call.params) if scope is not None else None


def _deny(call: _Call, reason: str, *, kind: str = "", fields: dict[str, Any] | None = None) -> GatewayResult:
    values = {**call.fields, "reason": reason, **(fields or {})}
    ar = lifecycle.action_open(
        session=call.session,
        status=Status.DENIED,
        actor=call.session.agent,
        kind=kind,
        details={"reason": reason, "params": values["params"]},
        **values,
    )
    return result_of(ar, DENY)


def _refuse_egress(call: _Call, problem: str) -> GatewayResult:
    """Data may not go there: refuse (the model is told why), audit, alert. The session goes on."""
    session = call.session
    with transaction.atomic():
        result = _deny(call, problem, kind="egress.refused")
        sessions.raise_alert(
            SecurityAlert.Kind.EXFILTRATION,
            f"agent {session.agent.name} tried to send data out with {call.fields['action']}: {problem}"[:500],
            session=session,
            details={"action_request": result.action_request_id},
        )
    return result


def _refuse_tier4(call: _Call, *, extra_fields: dict[str, Any] | None = None) -> GatewayResult:
    """Human-only: refuse, alert and end the session, whatever state it is in, in one transaction."""
    session = call.session
    with transaction.atomic():
        ar = lifecycle.action_open(
            session=session,
            status=Status.REFUSED,
            actor=session.agent,
            details={"reason": call.decision.reason, "params": call.fields["params"]},
            **{**call.fields, **(extra_fields or {})},
        )
        sessions.raise_alert(
            SecurityAlert.Kind.TIER4_ATTEMPT,
            f"agent {session.agent.name} attempted human-only action {ar.action}",
            session=session,
            details={"action_request": str(ar.id), "reason": call.decision.reason},
        )
        ended = sessions.end(session, reason="tier 4 attempt", actor=GATEWAY)
    sessions.after_end_if_needed(ended)
    return result_of(ar, TERMINATED)


def _queue_for_approval(call: _Call) -> GatewayResult:
    session = call.session
    now = timezone.now()
    with transaction.atomic():
        locked = AgentSession.objects.select_for_update().select_related("agent", "workflow").get(pk=session.pk)
        if locked.status != AgentSession.Status.ACTIVE:
            # Another call paused or ended the session since the token was checked: still a
            # decided call, refused and audited like any other.
            return _deny(call, f"the session is {locked.status.replace('_', ' ')}")
        ar = lifecycle.action_open(
            session=locked,
            status=Status.AWAITING_APPROVAL,
            actor=locked.agent,
            sealed_params=crypto.encrypt(context.json_text(call.params)),
            expires_at=now + timedelta(seconds=settings.WARDEN_APPROVAL_TTL_SECONDS),
            details={
                "reason": call.decision.reason,
                "params": call.fields["params"],
                "params_hash": call.digest,
                "quorum": call.decision.quorum,
            },
            **call.fields,
        )
        lifecycle.session_pause(locked, action_request=ar)
        transaction.on_commit(lambda: signals.action_awaiting_approval.send(ActionRequest, action_request=ar))
    return result_of(ar, PENDING)


def _allow(call: _Call, *, execute: bool, details: dict[str, Any] | None = None) -> GatewayResult:
    """Tiers 1 and 2. When Warden executes, the decision and the claim are one transaction:
    the ActionRequest is born `executing`, with its audit event, before the connector runs."""
    from agents.gateway.execution import run_connector

    session = call.session
    if _one_statement(call):
        # Tier 1 on PostgreSQL: the claim, the ActionRequest and its event are one statement and
        # one durable commit. A claim that matches nothing (another call moved the facts, the
        # session ended) takes the path below, which finds out why and decides again.
        claim, claimed_facts = _claim_statement(call)
        opened = lifecycle.action_open_claiming(
            session=session,
            claim=claim,
            status=Status.EXECUTING if execute else Status.ALLOWED,
            actor=session.agent,
            details=_allowed_details(call, details),
            **call.fields,
        )
        if opened is not None:
            _facts_written(session, claimed_facts)
            return run_connector(opened, call.params) if execute else result_of(opened, ALLOW)
    with transaction.atomic():
        # Claim the session row: the update that records the session's new facts is conditional
        # on the session being active and its facts being the ones this call was decided with, so
        # a call that raced a tier 4 termination, a pause or another call is never allowed on
        # stale facts. Tier 2 then re-verifies everything under that lock.
        problem = _claim(call)
        if problem is None and call.decision.tier == NOTIFY:
            problem = _reverify(session)
        if problem is None:
            ar = lifecycle.action_open(
                session=session,
                status=Status.EXECUTING if execute else Status.ALLOWED,
                actor=session.agent,
                savepoint=False,  # this block is left by any error of the insert
                details=_allowed_details(call, details),
                **call.fields,
            )
            allowed(session, ar, facts_recorded=True)
    if problem is not None:
        return _deny(call, problem)
    if not execute:
        return result_of(ar, ALLOW_NOTIFIED if call.decision.tier == NOTIFY else ALLOW)
    return run_connector(ar, call.params)


def _allowed_details(call: _Call, details: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "reason": call.decision.reason,
        "params": call.fields["params"],
        "grants_used": call.fields["grants_used"],
        **(details or {}),
    }


def _one_statement(call: _Call) -> bool:
    """Whether this allowed call can be opened in one statement: tier 1 (tier 2 re-verifies
    under locks first), on PostgreSQL, outside any caller's transaction."""
    return (
        call.decision.tier == Tier.AUTOMATED
        and connection.vendor == "postgresql"
        and connection.get_autocommit()
        and not connection.in_atomic_block
    )


def _claim_statement(call: _Call) -> tuple[tuple[str, list[Any]], SessionFacts]:
    """_claim()'s conditional UPDATE as SQL, for lifecycle.action_open_claiming: the session's
    new facts, written only if the session is live and its facts are the ones this call was
    decided with. The conditions are _live() and the facts sequence, as in _write_facts."""
    session = call.session
    facts = _facts_after(
        session, call.facts if call.facts is not None else session_facts(session), call.fields["action"], call.params
    )
    meta = AgentSession._meta

    def f(name: str) -> Field[Any, Any]:
        field = meta.get_field(name)
        assert isinstance(field, Field)
        return field

    live = _live()
    sql = (
        f"UPDATE {meta.db_table} SET {f('facts').column} = %s, {f('data_sensitivity').column} = %s, "
        f"{f('facts_seq').column} = %s WHERE {meta.pk.column} = %s AND {f('facts_seq').column} = %s "
        f"AND {f('status').column} = %s AND {f('expires_at').column} > %s RETURNING 1"
    )
    params = [
        f("facts").get_db_prep_save(facts.to_json(), connection),
        facts.sensitivity,
        session.facts_seq + 1,
        meta.pk.get_db_prep_value(session.pk, connection),
        session.facts_seq,
        live["status"],
        f("expires_at").get_db_prep_value(live["expires_at__gt"], connection),
    ]
    return (sql, params), facts


def _live() -> dict[str, Any]:
    """The claim's conditions: the session is active and within its time limit."""
    return {"status": AgentSession.Status.ACTIVE, "expires_at__gt": timezone.now()}


def allowed(session: AgentSession, ar: ActionRequest, params: Any = None, *, facts_recorded: bool = False) -> None:
    """What every allowed call does, whoever executes it: the session now holds the action's
    data (so later egress is checked against it, reported or not) and counts the call in its
    facts, and tier 2 notifies. The caller holds the session's row lock."""
    if not facts_recorded:
        record_facts(session, ar.action, params)
    if ar.tier == NOTIFY:
        transaction.on_commit(lambda: signals.action_notified.send(ActionRequest, action_request=ar))


def session_facts(session: AgentSession) -> SessionFacts:
    return SessionFacts.from_json(session.facts, session.data_sensitivity)


def _facts_after(session: AgentSession, facts: SessionFacts, action: str, params: Any) -> SessionFacts:
    spec = snapshot_for(session).actions.get(action)
    if spec is None:
        return facts.after(action, params)
    return facts.after(action, params, spec.data_objects, spec.sensitivity)


def _write_facts(session: AgentSession, facts: SessionFacts, **conditions: Any) -> bool:
    """One UPDATE of the session row: its facts, its sensitivity and the facts' sequence."""
    seq = session.facts_seq
    written = AgentSession.objects.filter(pk=session.pk, facts_seq=seq, **conditions).update(
        facts=facts.to_json(), data_sensitivity=facts.sensitivity, facts_seq=seq + 1
    )
    if written:
        _facts_written(session, facts)
    return bool(written)


def _facts_written(session: AgentSession, facts: SessionFacts) -> None:
    """The session object as the claim left its row."""
    session.facts, session.data_sensitivity, session.facts_seq = (
        facts.to_json(),
        facts.sensitivity,
        session.facts_seq + 1,
    )


def _claim(call: _Call) -> str | None:
    """Record this call in the session's facts, conditional on the session being active and its
    facts unchanged since the call was decided (no extra round trip: this update is the lock).
    When another call got there first, decide again on the current facts."""
    session, action = call.session, call.fields["action"]
    facts = call.facts if call.facts is not None else session_facts(session)
    if _write_facts(session, _facts_after(session, facts, action, call.params), **_live()):
        return None
    fresh = AgentSession.objects.select_for_update().filter(pk=session.pk).first()
    if fresh is None or fresh.status != AgentSession.Status.ACTIVE:
        return f"the session is {str(fresh.status if fresh else 'gone').replace('_', ' ')}"
    if fresh.expires_at <= timezone.now():
        return "the session has expired"
    session.facts, session.data_sensitivity, session.facts_seq = fresh.facts, fresh.data_sensitivity, fresh.facts_seq
    current = session_facts(session)
    again = decide(call.snap or snapshot_for(session), action, call.params, facts=current)
    if again.tier != call.decision.tier or not again.allowed or again.egress_refused:
        return f"another call changed the session's facts while this one was decided; call again ({again.reason})"
    _write_facts(session, _facts_after(session, current, action, call.params))
    return None


def record_facts(session: AgentSession, action: str, params: Any) -> None:
    """Count an allowed call in the session's facts; the caller holds the session's row lock."""
    _write_facts(session, _facts_after(session, session_facts(session), action, params))


def raise_sensitivity(session: AgentSession, action: str) -> None:
    """The session has now handled this action's data: it carries its class from here on."""
    spec = snapshot_for(session).actions.get(action)
    if spec is None or Sensitivity.rank(session.data_sensitivity) >= spec.sensitivity:
        return  # nothing to raise: no write
    level = destinations.level_name(spec.sensitivity)
    lower = [c for c in Sensitivity.values if Sensitivity.rank(c) < spec.sensitivity]
    AgentSession.objects.filter(pk=session.pk, data_sensitivity__in=lower).update(data_sensitivity=level)
    session.data_sensitivity = level


def _reverify(session: AgentSession) -> str | None:
    """Tier 2: read tokens and agent again, locked, from the database (never a cache). The
    session row was claimed just before (_claim: active, not expired, locked by that update)."""
    agent = AgentIdentity.objects.select_for_update().get(pk=session.agent_id)
    if agent.status != AgentIdentity.Status.ACTIVE:
        return f"re-verification failed: agent {agent.name!r} is {agent.status}"
    if not SessionToken.objects.filter(
        session=session, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).exists():
        return "re-verification failed: the session has no valid token"
    return None


def _replay(seen: ActionRequest, session: AgentSession, params: Any) -> GatewayResult:
    """The same call again under the same tool_use id (a retry, or a runner restarted after a
    crash): the first decision stands, and nothing is decided or executed twice."""
    from agents.gateway.execution import run_connector

    if seen.status == Status.EXECUTING:
        # The previous attempt died mid-call; the connector's idempotency key makes this safe.
        audit.record(
            "action.resumed",
            GATEWAY,
            session=session,
            workflow=session.workflow,
            system=seen.system,
            action=seen.action,
            tier=seen.tier,
            outcome="executing",
            details={"action_request": str(seen.id), "agent": session.agent.name},
        )
        seen.session = session
        return run_connector(seen, params)
    audit.record(
        "action.replayed",
        session.agent,
        session=session,
        workflow=session.workflow,
        system=seen.system,
        action=seen.action,
        tier=seen.tier,
        outcome=seen.status,
        details={"action_request": str(seen.id), "agent": session.agent.name, "tool_use_id": seen.tool_use_id},
    )
    return result_of(seen)


def _replay_mismatch(call: _Call, seen: ActionRequest) -> GatewayResult:
    """A tool_use id reused for a different action or parameters: a new call, never the old
    decision. It is refused, audited and alerted; if it is a tier 4 attempt, the session ends."""
    session = call.session
    reason = f"tool_use id {call.tool_use_id!r} was already used for another call in this session"
    marker = {"tool_use_id": "", "reason": reason}

    def alert() -> None:
        sessions.raise_alert(
            SecurityAlert.Kind.ANOMALY,
            f"agent {session.agent.name} reused tool_use id {call.tool_use_id[:40]!r} for a different call",
            session=session,
            details={"first_action_request": str(seen.id), "tool_use_id": call.tool_use_id},
        )

    if call.decision.tier is not None and call.decision.tier >= HUMAN_ONLY:
        alert()
        return _refuse_tier4(call, extra_fields=marker)
    with transaction.atomic():
        alert()
        return _deny(call, reason, kind="action.replay_mismatch", fields=marker)


def handoff_context(session: AgentSession, ar: ActionRequest | None = None) -> dict[str, Any]:
    """What a person needs to take over, already filtered by the context rules."""
    steps = list(session.action_requests.order_by("created_at").values("action", "tier", "status", "reason"))
    ctx: dict[str, Any] = {
        "workflow": session.workflow.name,
        "agent": session.agent.name,
        "input": session.input,
        "steps": steps,
    }
    if ar is not None:
        ctx["failed_action"] = {"action": ar.action, "params": ar.params, "error": ar.error}
    return ctx


# What happens after a decision (release, reject, expiry, results) is in execution.py; the
# names stay importable from here because every caller knows them as agents.gateway.*.
from agents.gateway.execution import (  # noqa: E402
    ReportRefused,
    approve,
    execute_action,
    expire_request,
    reject,
    release,
    report_result,
    run_connector,
)

_result_of = result_of  # the old private name, for callers outside this package

__all__ = [
    "ALLOW",
    "ALLOW_NOTIFIED",
    "DENY",
    "PENDING",
    "TERMINATED",
    "GatewayResult",
    "Outcome",
    "ReportRefused",
    "approve",
    "authorize",
    "execute_action",
    "expire_request",
    "handoff_context",
    "reject",
    "release",
    "report_result",
    "run_connector",
]
