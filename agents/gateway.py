"""The enforcement gateway: the single path of every tool call (DESIGN.md, "the hot path").

authorize() verifies the token, resolves the action against the workflow's access map,
asks governance.policy.decide() for the tier, and acts on it:
T1 executes; T2 re-reads session, token and agent, executes and notifies; T3 queues the
call for approval and pauses the session; T4 refuses, terminates and alerts. Each state
change commits together with its audit event, and executing is three steps: claim
(`executing`, audited), call the connector outside any transaction, record the result.
If step one cannot be audited, the connector is never called.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from prometheus_client import Counter

import audit
from agents import context, destinations, sessions, signals
from agents.connectors import ConnectorError, get_connector
from agents.models import ActionRequest, AgentSession, SecurityAlert, SessionToken
from audit.canonical import params_hash
from governance import crypto
from governance.models import AgentIdentity, ServiceCredential, System, Workflow
from governance.policy import Decision, WorkflowSnapshot, decide, snapshot

ALLOW, ALLOW_NOTIFIED, PENDING, DENY, TERMINATED = (
    "allow",
    "allow_notified",
    "pending_approval",
    "deny",
    "session_terminated",
)
Status = ActionRequest.Status


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


_SNAPSHOTS: dict[int, tuple[tuple[Any, ...], float, WorkflowSnapshot]] = {}
_SNAPSHOT_SECONDS = 5.0


def _snapshot(workflow: Workflow) -> WorkflowSnapshot:
    """decide() needs the workflow in memory; rebuild it when the workflow changes, or every few seconds."""
    key = (workflow.version, workflow.updated_at)
    cached = _SNAPSHOTS.get(workflow.pk)
    if cached and cached[0] == key and time.monotonic() - cached[1] < _SNAPSHOT_SECONDS:
        return cached[2]
    snap = snapshot(workflow)
    _SNAPSHOTS[workflow.pk] = (key, time.monotonic(), snap)
    return snap


def _result_of(ar: ActionRequest, decision: str | None = None) -> GatewayResult:
    if decision is None:
        decision = {
            Status.AWAITING_APPROVAL: PENDING,
            Status.APPROVED: PENDING,
            Status.DENIED: DENY,
            Status.REFUSED: TERMINATED,
        }.get(ar.status, ALLOW_NOTIFIED if ar.tier == 2 else ALLOW)
    return GatewayResult(decision, ar.tier, ar.reason, str(ar.id), ar.status, ar.result, ar.error)


def _deny_without_session(token: Any, action: Any, exc: sessions.TokenInvalid) -> GatewayResult:
    session = exc.session
    audit.record(
        "action.denied",
        session.agent if session else "unknown",
        session=session or "",
        workflow=session.workflow if session else "",
        action=str(action)[:128],
        outcome="denied",
        details={"reason": exc.reason},
    )
    return GatewayResult(TERMINATED if exc.terminated else DENY, None, exc.reason)


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
    result = _authorize(
        token, action, params, tool_use_id=tool_use_id, execute=execute, verified_session=verified_session
    )
    DECISIONS.labels(tier=str(result.tier or "none"), decision=result.decision).inc()
    return result


def _authorize(
    token: Any, action: Any, params: Any, *, tool_use_id: str, execute: bool, verified_session: AgentSession | None
) -> GatewayResult:
    try:
        session = verified_session if verified_session is not None else sessions.verify_token(token)[0]
    except sessions.TokenInvalid as exc:
        return _deny_without_session(token, action, exc)
    tool_use_id = str(tool_use_id or "")[:128]
    try:
        return _decide_and_act(session, action, params, tool_use_id, execute)
    except IntegrityError:
        # The same tool_use id again (a retry, or a runner restarted after a crash): the
        # unique constraint caught it, and the first decision stands.
        seen = ActionRequest.objects.filter(session=session, tool_use_id=tool_use_id).first() if tool_use_id else None
        if seen is None:
            raise
        return _replay(seen, session, params)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _decide_and_act(session: AgentSession, action: Any, params: Any, tool_use_id: str, execute: bool) -> GatewayResult:
    if _has_nul(action) or _has_nul(params) or "\x00" in tool_use_id:
        # Nothing with a NUL character can be stored (PostgreSQL text refuses it): refuse, and
        # record the refusal with the NULs made visible.
        base = {
            "session": session,
            "tool_use_id": tool_use_id.replace("\x00", "\ufffd"),
            "action": str(action).replace("\x00", "\ufffd")[:128],
            "params": {"_invalid": "NUL characters"},
            "reason": "the action name or parameters contain NUL characters",
        }
        return _record_denial(session, base, Decision(None, False, base["reason"]))
    snap = _snapshot(session.workflow)
    decision = decide(snap, action, params)
    ctx = context.load_policy()
    spec = snap.actions.get(action) if isinstance(action, str) else None
    stored_params = context.persistable_params(params, spec.data_objects if spec else (), ctx)
    try:
        digest = params_hash(params)
    except Exception:  # noqa: BLE001 - not JSON: decide() has already refused it
        digest = ""
    base = {
        "session": session,
        "tool_use_id": tool_use_id,
        "action": str(action)[:128],
        "system": spec.system if spec else "",
        "tier": decision.tier,
        "reason": decision.reason,
        "grants_used": [list(g) for g in decision.grants_used],
        "params_hash": digest,
        "quorum": decision.quorum,
        "params": stored_params if isinstance(stored_params, dict) else {"_invalid": type(params).__name__},
    }
    if decision.tier is None:
        return _record_denial(session, base, decision)
    egress = destinations.egress_problem(snap, spec, params, session.data_sensitivity) if spec else None
    if egress:
        return _refuse_egress(session, base, decision, egress)
    if decision.tier >= 4:
        return _refuse_tier4(session, base, decision)
    if decision.tier == 3:
        return _queue_for_approval(session, base, decision, params)
    return _allow(session, base, decision, params, execute=execute)


def _audit_fields(session: AgentSession, ar: ActionRequest) -> dict[str, Any]:
    return {"session": session, "workflow": session.workflow, "system": ar.system, "action": ar.action, "tier": ar.tier}


def _record_denial(session: AgentSession, base: dict[str, Any], decision: Decision) -> GatewayResult:
    with transaction.atomic():
        ar = ActionRequest.objects.create(status=Status.DENIED, **base)
        audit.record(
            "action.denied",
            session.agent,
            outcome="denied",
            **_audit_fields(session, ar),
            details={"action_request": str(ar.id), "reason": decision.reason, "params": ar.params},
        )
    return _result_of(ar, DENY)


def _refuse_egress(session: AgentSession, base: dict[str, Any], decision: Decision, problem: str) -> GatewayResult:
    """Data may not go there: refuse (the model is told why), audit, alert. The session goes on."""
    with transaction.atomic():
        ar = ActionRequest.objects.create(status=Status.DENIED, **{**base, "reason": f"destination refused: {problem}"})
        audit.record(
            "egress.refused",
            session.agent,
            outcome="denied",
            **_audit_fields(session, ar),
            details={"action_request": str(ar.id), "reason": problem, "session_sensitivity": session.data_sensitivity},
        )
        sessions.raise_alert(
            SecurityAlert.Kind.EXFILTRATION,
            f"agent {session.agent.name} tried to send data out with {ar.action}: {problem}"[:500],
            session=session,
            details={"action_request": str(ar.id)},
        )
    return _result_of(ar, DENY)


def _refuse_tier4(session: AgentSession, base: dict[str, Any], decision: Decision) -> GatewayResult:
    with transaction.atomic():
        ar = ActionRequest.objects.create(status=Status.REFUSED, **base)
        audit.record(
            "action.refused",
            session.agent,
            outcome="refused",
            **_audit_fields(session, ar),
            details={"action_request": str(ar.id), "reason": decision.reason, "params": ar.params},
        )
        sessions.raise_alert(
            SecurityAlert.Kind.TIER4_ATTEMPT,
            f"agent {session.agent.name} attempted human-only action {ar.action}",
            session=session,
            details={"action_request": str(ar.id), "reason": decision.reason},
        )
    sessions.terminate(session, reason="tier 4 attempt", actor="system:gateway")
    return _result_of(ar, TERMINATED)


def _queue_for_approval(session: AgentSession, base: dict[str, Any], decision: Decision, params: Any) -> GatewayResult:
    now = timezone.now()
    with transaction.atomic():
        locked = AgentSession.objects.select_for_update().get(pk=session.pk)
        if locked.status != AgentSession.Status.ACTIVE:
            return GatewayResult(DENY, decision.tier, f"the session is {locked.status.replace('_', ' ')}")
        ar = ActionRequest.objects.create(
            status=Status.AWAITING_APPROVAL,
            sealed_params=crypto.encrypt(context.json_text(params)),
            expires_at=now + timedelta(seconds=settings.WARDEN_APPROVAL_TTL_SECONDS),
            **base,
        )
        AgentSession.objects.filter(pk=session.pk).update(status=AgentSession.Status.AWAITING_APPROVAL, paused_at=now)
        audit.record(
            "action.awaiting_approval",
            session.agent,
            outcome="awaiting_approval",
            **_audit_fields(session, ar),
            details={
                "action_request": str(ar.id),
                "reason": decision.reason,
                "params": ar.params,
                "params_hash": ar.params_hash,
                "quorum": ar.quorum,
                "expires_at": ar.expires_at.isoformat(),
            },
        )
        transaction.on_commit(lambda: signals.action_awaiting_approval.send(ActionRequest, action_request=ar))
    return _result_of(ar, PENDING)


def _allow(
    session: AgentSession, base: dict[str, Any], decision: Decision, params: Any, *, execute: bool
) -> GatewayResult:
    """Tiers 1 and 2. When Warden executes, the decision and the claim are one transaction:
    the ActionRequest is born `executing`, with its audit event, before the connector runs."""
    with transaction.atomic():
        problem = _reverify(session) if decision.tier == 2 else None
        if problem is None:
            ar = ActionRequest.objects.create(status=Status.EXECUTING if execute else Status.ALLOWED, **base)
            audit.record(
                "action.executing" if execute else "action.allowed",
                session.agent,
                outcome="executing" if execute else "allowed",
                **_audit_fields(session, ar),
                details={
                    "action_request": str(ar.id),
                    "reason": decision.reason,
                    "params": ar.params,
                    "grants_used": ar.grants_used,
                },
            )
    if problem is not None:
        return _record_denial(session, {**base, "reason": problem}, decision)
    if not execute:
        return _result_of(ar, ALLOW_NOTIFIED if decision.tier == 2 else ALLOW)
    ar.session = session
    return _run_connector(ar, params)


def _reverify(session: AgentSession) -> str | None:
    """Tier 2: read session, tokens and agent again, locked, from the database (never a cache)."""
    fresh = AgentSession.objects.select_for_update().get(pk=session.pk)
    agent = AgentIdentity.objects.select_for_update().get(pk=fresh.agent_id)
    if fresh.status != AgentSession.Status.ACTIVE or fresh.expires_at <= timezone.now():
        return f"re-verification failed: the session is {fresh.status.replace('_', ' ')}"
    if agent.status != AgentIdentity.Status.ACTIVE:
        return f"re-verification failed: agent {agent.name!r} is {agent.status}"
    if not SessionToken.objects.filter(session=fresh, revoked_at__isnull=True, expires_at__gt=timezone.now()).exists():
        return "re-verification failed: the session has no valid token"
    return None


def _execution_problem(ar: ActionRequest, params: Any) -> str | None:
    """Everything checked again at the moment of execution, whoever asks (runner, release, task)."""
    session = AgentSession.objects.select_for_update().select_related("agent").get(pk=ar.session_id)
    if ar.status not in (Status.ALLOWED, Status.APPROVED):
        return f"the action is {ar.status.replace('_', ' ')}, not approved for execution"
    if session.status != AgentSession.Status.ACTIVE:
        return f"the session is {session.status.replace('_', ' ')}"
    if session.agent.status != AgentIdentity.Status.ACTIVE:
        return f"agent {session.agent.name!r} is {session.agent.status}"
    if ar.params_hash and params_hash(params) != ar.params_hash:
        return "the parameters differ from the ones that were authorized"
    if ar.expires_at is not None and ar.expires_at <= timezone.now() and ar.status != Status.APPROVED:
        return "the approval request has expired"
    return None


def execute_action(ar: ActionRequest, params: Any) -> GatewayResult:
    """Claim, execute through the connector, record. Exactly once per ActionRequest."""
    with transaction.atomic():
        ar = ActionRequest.objects.select_for_update().get(pk=ar.pk)
        problem = _execution_problem(ar, params)
        if problem:
            if ar.status in (Status.EXECUTING, *ActionRequest.FINISHED):
                return _result_of(ar)  # someone else has it: never twice
            audit.record(
                "action.execution_refused",
                "system:gateway",
                outcome="refused",
                **_audit_fields(ar.session, ar),
                details={"action_request": str(ar.id), "reason": problem},
            )
            return GatewayResult(DENY, ar.tier, problem, str(ar.id), ar.status)
        ActionRequest.objects.filter(pk=ar.pk).update(status=Status.EXECUTING)
        audit.record(
            "action.executing",
            "system:gateway",
            outcome="executing",
            **_audit_fields(ar.session, ar),
            details={"action_request": str(ar.id)},
        )
    return _run_connector(ar, params)


def _run_connector(ar: ActionRequest, params: Any) -> GatewayResult:
    session = ar.session
    try:
        credential = (
            ServiceCredential.objects.select_related("system").filter(system__name=ar.system).order_by("name").first()
        )
        system = credential.system if credential else System.objects.get(name=ar.system)
        raw = get_connector(system.connector).execute(ar.action, params, credential, str(ar.id), session=session)
        view = context.filter_result(raw, context.load_policy())
        error = ""
    except ConnectorError as exc:
        view, error = None, str(exc)[:500] or "the connector failed"
    except crypto.SecretUnreadable as exc:
        view, error = None, str(exc)
    except Exception as exc:  # noqa: BLE001 - any failure leaves a defined state: failed + handoff
        view, error = None, f"the connector failed unexpectedly ({type(exc).__name__})"
    now = timezone.now()
    ar.status, ar.result, ar.error, ar.executed_at, ar.sealed_params = (
        Status.FAILED if error else Status.SUCCEEDED,
        view,
        error,
        now,
        "",
    )
    with transaction.atomic():
        if error:
            ActionRequest.objects.filter(pk=ar.pk).update(
                status=Status.FAILED, error=error, executed_at=now, sealed_params=""
            )
            audit.record(
                "action.failed",
                "system:gateway",
                outcome="failed",
                **_audit_fields(session, ar),
                details={"action_request": str(ar.id), "error": error},
            )
        else:
            ActionRequest.objects.filter(pk=ar.pk).update(
                status=Status.SUCCEEDED, result=view, executed_at=now, sealed_params=""
            )
            audit.record(
                "action.executed",
                "system:gateway",
                outcome="succeeded",
                **_audit_fields(session, ar),
                details={"action_request": str(ar.id), **context.describe_access(view)},
            )
            _raise_sensitivity(session, ar)
            if ar.tier == 2:
                transaction.on_commit(lambda: signals.action_notified.send(ActionRequest, action_request=ar))
    if error:
        sessions.hand_off(
            session, trigger=f"connector error in {ar.action}: {error}", context=handoff_context(session, ar)
        )
    return _result_of(ar)


def _raise_sensitivity(session: AgentSession, ar: ActionRequest) -> None:
    """The session has now handled this action's data: it carries its class from here on."""
    from governance.models import Sensitivity

    spec = _snapshot(session.workflow).actions.get(ar.action)
    if spec is None:
        return
    level = destinations.level_name(spec.sensitivity)
    lower = [c for c in Sensitivity.values if Sensitivity.rank(c) < spec.sensitivity]
    AgentSession.objects.filter(pk=session.pk, data_sensitivity__in=lower).update(data_sensitivity=level)


def _replay(seen: ActionRequest, session: AgentSession, params: Any) -> GatewayResult:
    """The same tool_use id again (a retry, or a runner restarted after a crash): never a second decision."""
    if seen.status == Status.EXECUTING and seen.params_hash == _safe_hash(params):
        # The previous attempt died mid-call; the connector's idempotency key makes this safe.
        audit.record(
            "action.resumed",
            "system:gateway",
            outcome="executing",
            **_audit_fields(session, seen),
            details={"action_request": str(seen.id)},
        )
        return _run_connector(seen, params)
    return _result_of(seen)


def _safe_hash(params: Any) -> str:
    try:
        return params_hash(params)
    except Exception:  # noqa: BLE001
        return ""


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


# --- Tier 3: what happens after a reviewer decides (called by the approvals app) ---------------


def _resume_session(session: AgentSession) -> None:
    """The clock stops while a session waits for a person: extend its expiry by the pause."""
    now = timezone.now()
    paused_for = now - (session.paused_at or now)
    AgentSession.objects.filter(pk=session.pk).update(
        status=AgentSession.Status.ACTIVE, paused_at=None, expires_at=session.expires_at + paused_for
    )
    SessionToken.objects.filter(session=session, revoked_at__isnull=True).update(
        expires_at=session.expires_at + paused_for
    )


def release(action_request: ActionRequest) -> GatewayResult:
    """Execute an approved tier 3 action exactly once and let its session continue."""
    with transaction.atomic():
        ar = ActionRequest.objects.select_for_update().select_related("session").get(pk=action_request.pk)
        session = AgentSession.objects.select_for_update().select_related("agent", "workflow").get(pk=ar.session_id)
        if ar.status in (Status.EXECUTING, *ActionRequest.FINISHED):
            return _result_of(ar)
        problem = _release_problem(ar, session)
        if problem:
            audit.record(
                "action.release_refused",
                "system:gateway",
                outcome="refused",
                **_audit_fields(session, ar),
                details={"action_request": str(ar.id), "reason": problem},
            )
            return GatewayResult(DENY, ar.tier, problem, str(ar.id), ar.status)
        if ar.status == Status.AWAITING_APPROVAL:
            ActionRequest.objects.filter(pk=ar.pk).update(status=Status.APPROVED)
            ar.status = Status.APPROVED
            audit.record(
                "action.released",
                "system:gateway",
                outcome="approved",
                **_audit_fields(session, ar),
                details={"action_request": str(ar.id), "params_hash": ar.params_hash},
            )
        if session.status == AgentSession.Status.AWAITING_APPROVAL:
            _resume_session(session)
        if session.run_state == AgentSession.RunState.API:
            # An external runtime executes approved actions itself and reports the result.
            ActionRequest.objects.filter(pk=ar.pk).update(sealed_params="")
            ar.refresh_from_db()
            return _result_of(ar, ALLOW_NOTIFIED)
        params = context.parse_json_text(crypto.decrypt(ar.sealed_params))
    result = execute_action(ar, params)
    _announce_resumable(ar)
    return result


def _release_problem(ar: ActionRequest, session: AgentSession) -> str | None:
    if ar.status not in (Status.AWAITING_APPROVAL, Status.APPROVED):
        return f"the action is {ar.status.replace('_', ' ')}"
    if ar.tier != 3:
        return "only tier 3 actions are released"
    if ar.expires_at is not None and ar.expires_at <= timezone.now():
        return "the approval request has expired"
    if session.status not in (AgentSession.Status.AWAITING_APPROVAL, AgentSession.Status.ACTIVE):
        return f"the session is {session.status.replace('_', ' ')}"
    if session.agent.status != AgentIdentity.Status.ACTIVE:
        return f"agent {session.agent.name!r} is {session.agent.status}"
    if not ar.sealed_params:
        return "the authorized parameters are no longer available"
    try:
        sealed = context.parse_json_text(crypto.decrypt(ar.sealed_params))
    except (crypto.SecretUnreadable, ValueError):
        return "the authorized parameters cannot be read"
    if params_hash(sealed) != ar.params_hash:
        return "the parameters differ from the ones that were authorized"
    return None


def _announce_resumable(ar: ActionRequest) -> None:
    transaction.on_commit(
        lambda: signals.session_resumable.send(AgentSession, session_id=ar.session_id, action_request_id=ar.pk)
    )


def reject(action_request: ActionRequest, *, reason: str, actor: str) -> ActionRequest:
    """A reviewer said no: tell the agent why, and continue or end as the workflow says."""
    with transaction.atomic():
        ar = ActionRequest.objects.select_for_update().select_related("session__workflow").get(pk=action_request.pk)
        if ar.status != Status.AWAITING_APPROVAL:
            return ar
        ActionRequest.objects.filter(pk=ar.pk).update(
            status=Status.REJECTED, decided_reason=reason, sealed_params="", error=f"rejected by a reviewer: {reason}"
        )
        audit.record(
            "action.rejected",
            actor,
            outcome="rejected",
            **_audit_fields(ar.session, ar),
            details={"action_request": str(ar.id), "comment": reason},
        )
        session = AgentSession.objects.select_for_update().get(pk=ar.session_id)
        if (
            session.workflow.on_reject == Workflow.OnReject.CONTINUE
            and session.status == AgentSession.Status.AWAITING_APPROVAL
        ):
            _resume_session(session)
            _announce_resumable(ar)
    ar.refresh_from_db()
    if ar.session.workflow.on_reject == Workflow.OnReject.END:
        sessions.terminate(ar.session, reason="tier 3 action rejected", actor=actor)
    return ar


def expire_request(action_request: ActionRequest) -> ActionRequest:
    """An approval that came too late: the request expires and the paused session goes to a person."""
    with transaction.atomic():
        ar = ActionRequest.objects.select_for_update().get(pk=action_request.pk)
        if (
            ar.status not in (Status.AWAITING_APPROVAL, Status.APPROVED)
            or ar.expires_at is None
            or ar.expires_at > timezone.now()
        ):
            return ar
        ActionRequest.objects.filter(pk=ar.pk).update(status=Status.EXPIRED, sealed_params="")
        audit.record(
            "action.expired",
            "system:sweeper",
            outcome="expired",
            **_audit_fields(ar.session, ar),
            details={"action_request": str(ar.id)},
        )
    ar.refresh_from_db()
    session = ar.session
    if session.is_live:
        sessions.hand_off(session, trigger=f"approval of {ar.action} expired", context=handoff_context(session, ar))
    return ar


class ReportRefused(Exception):
    pass


def report_result(action_request: ActionRequest, *, outcome: str, result: Any, error: str = "") -> ActionRequest:
    """An external runtime ran an allowed (or approved) action and says what happened. The
    result is stored as context rules allow (never-persist values fingerprinted) and audited."""
    with transaction.atomic():
        ar = (
            ActionRequest.objects.select_for_update()
            .select_related("session__workflow", "session__agent")
            .get(pk=action_request.pk)
        )
        if ar.status not in (Status.ALLOWED, Status.APPROVED):
            raise ReportRefused(
                f"the action is {ar.status.replace('_', ' ')}: only allowed or approved actions take a result"
            )
        session = ar.session
        spec = _snapshot(session.workflow).actions.get(ar.action)
        policy = context.load_policy()
        stored = (
            context.filter_result(result, policy)
            if isinstance(result, dict) and "data_object" in result
            else context.persistable_params(result, spec.data_objects if spec else (), policy)
        )
        new_status = Status.REPORTED if outcome == "succeeded" else Status.FAILED
        ActionRequest.objects.filter(pk=ar.pk).update(
            status=new_status, result=stored, error=error[:2000], executed_at=timezone.now()
        )
        audit.record(
            "action.reported",
            session.agent,
            outcome=outcome,
            **_audit_fields(session, ar),
            details={
                "action_request": str(ar.id),
                "error": error[:500],
                **context.describe_access(stored if isinstance(stored, dict) else {}),
            },
        )
        if outcome == "succeeded":
            _raise_sensitivity(session, ar)
    ar.refresh_from_db()
    return ar
