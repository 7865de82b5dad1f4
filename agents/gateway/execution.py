"""After the decision: executing through the connector, a reviewer's approval (release) or
rejection, expiry, and results reported by external runtimes.

Every state change goes through agents.lifecycle, so each one commits with its audit event.
Executing is three steps: claim (`executing`, audited), call the connector outside any
transaction (the ActionRequest id is the idempotency key), record the result. If the claim
cannot be audited, the connector is never called.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from agents import context, lifecycle, sessions, signals
from agents.connectors import ConnectorError, get_connector
from agents.connectors.scrub import scrub
from agents.gateway import (
    ALLOW_NOTIFIED,
    APPROVE,
    DENY,
    HUMAN_ONLY,
    GatewayResult,
    allowed,
    handoff_context,
    raise_sensitivity,
    record_facts,
    result_of,
    session_facts,
    snapshot_for,
)
from agents.models import ActionRequest, AgentSession
from audit.actors import GATEWAY, SWEEPER
from audit.canonical import params_hash
from governance import crypto, versions
from governance.models import AgentIdentity, ServiceCredential, System, Workflow
from governance.policy import decide

Status = ActionRequest.Status


def _execution_problem(ar: ActionRequest, session: AgentSession, params: Any) -> str | None:
    """Everything checked again at the moment of execution, whoever asks (runner, release, task)."""
    if ar.status != Status.APPROVED:
        return f"the action is {ar.status.replace('_', ' ')}, not approved for execution"
    if session.status != AgentSession.Status.ACTIVE:
        return f"the session is {session.status.replace('_', ' ')}"
    if session.agent.status != AgentIdentity.Status.ACTIVE:
        return f"agent {session.agent.name!r} is {session.agent.status}"
    if ar.params_hash and params_hash(params) != ar.params_hash:
        return "the parameters differ from the ones that were authorized"
    return None


def execute_action(ar: ActionRequest, params: Any) -> GatewayResult:
    """Claim an approved action, execute it through the connector, record. Exactly once."""
    with transaction.atomic():
        ar = ActionRequest.objects.select_for_update().get(pk=ar.pk)
        session = AgentSession.objects.select_for_update().select_related("agent", "workflow").get(pk=ar.session_id)
        if ar.status in (Status.EXECUTING, *ActionRequest.FINISHED):
            return result_of(ar)  # someone else has it: never twice
        problem = _execution_problem(ar, session, params)
        if problem:
            _audit_refusal("action.execution_refused", ar, session, problem)
            return GatewayResult(DENY, ar.tier, problem, str(ar.id), ar.status)
        ar = lifecycle.action_move(ar, Status.EXECUTING, actor=GATEWAY, session=session, locked=True)
        allowed(session, ar, params)
    return run_connector(ar, params)


def _audit_refusal(kind: str, ar: ActionRequest, session: AgentSession, problem: str) -> None:
    import audit

    audit.record(
        kind,
        GATEWAY,
        session=session,
        workflow=session.workflow,
        system=ar.system,
        action=ar.action,
        tier=ar.tier,
        outcome="refused",
        details={"action_request": str(ar.id), "agent": session.agent.name, "reason": problem},
    )


_CREDENTIALS: dict[str, tuple[int, tuple[ServiceCredential | None, System]]] = {}


def _credential_for(system_name: str, policy_version: int | None) -> tuple[ServiceCredential | None, System]:
    """The credential a connector uses for a system, kept per process until the policy version
    moves (saving a credential, as rotation does, moves it: decision 0015)."""
    version = policy_version if policy_version is not None else versions.current()
    cached = _CREDENTIALS.get(system_name)
    if cached is not None and version is not None and cached[0] == version:
        return cached[1]
    credential = (
        ServiceCredential.objects.select_related("system").filter(system__name=system_name).order_by("name").first()
    )
    found = (credential, credential.system if credential else System.objects.get(name=system_name))
    if version is not None:
        _CREDENTIALS[system_name] = (version, found)
    return found


def run_connector(ar: ActionRequest, params: Any) -> GatewayResult:
    """Call the connector for an ActionRequest that is `executing`, then record the result."""
    session = ar.session
    try:
        credential, system = _credential_for(ar.system, getattr(session, "policy_version", None))
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
    if error:
        ar = lifecycle.action_move(
            ar,
            Status.FAILED,
            actor=GATEWAY,
            session=session,
            locked=True,  # executing is a claim: only this caller moves the row from here
            error=error,
            executed_at=now,
            sealed_params="",
            details={"error": error},
        )
        sessions.hand_off(
            session, trigger=f"connector error in {ar.action}: {error}", context=handoff_context(session, ar)
        )
    else:
        ar = lifecycle.action_move(
            ar,
            Status.SUCCEEDED,
            actor=GATEWAY,
            session=session,
            locked=True,  # executing is a claim: only this caller moves the row from here
            result=view,
            executed_at=now,
            sealed_params="",
            details=context.describe_access(view),
        )
    return result_of(ar)


# --- Tier 3: what happens after a reviewer decides (called by the approvals app) ---------------


def approve(action_request: ActionRequest, *, actor: Any = GATEWAY) -> tuple[ActionRequest, AgentSession, str | None]:
    """The transactional half of release(): the quorum is met, so the request becomes
    `approved` (audited as action.released) and its paused session resumes. Call it inside the
    transaction that recorded the deciding approval, so no rejection can slip in between.
    Returns the request, its session, and why it could not be approved (or None)."""
    with transaction.atomic():
        ar = ActionRequest.objects.select_for_update().get(pk=action_request.pk)
        session = AgentSession.objects.select_for_update().select_related("agent", "workflow").get(pk=ar.session_id)
        if ar.status in (Status.EXECUTING, *ActionRequest.FINISHED):
            return ar, session, None
        problem = _release_problem(ar, session)
        if problem:
            _audit_refusal("action.release_refused", ar, session, problem)
            return ar, session, problem
        if ar.status == Status.AWAITING_APPROVAL:
            ar = lifecycle.action_move(
                ar, Status.APPROVED, actor=actor, session=session, locked=True, details={"params_hash": ar.params_hash}
            )
        if session.status == AgentSession.Status.AWAITING_APPROVAL:
            session = lifecycle.session_resume(session, actor=actor, action_request=ar)
    return ar, session, None


def release(action_request: ActionRequest, *, actor: Any = GATEWAY) -> GatewayResult:
    """Approve a tier 3 action (its quorum is met) and let its session continue. For sessions
    Warden runs, execute it exactly once; an external runtime executes it and reports."""
    with transaction.atomic():
        ar, session, problem = approve(action_request, actor=actor)
        if problem:
            return GatewayResult(DENY, ar.tier, problem, str(ar.id), ar.status)
        if ar.status in (Status.EXECUTING, *ActionRequest.FINISHED):
            return result_of(ar)
        if session.run_state == AgentSession.RunState.API:
            # An external runtime executes approved actions itself and reports the result.
            approved = context.parse_json_text(crypto.decrypt(ar.sealed_params))
            ActionRequest.objects.filter(pk=ar.pk).update(sealed_params="")
            record_facts(session, ar.action, approved)
            return result_of(ar, ALLOW_NOTIFIED)
        params = context.parse_json_text(crypto.decrypt(ar.sealed_params))
    result = execute_action(ar, params)
    _announce_resumable(ar)
    return result


def finish_release(action_request: ActionRequest) -> GatewayResult:
    """Finish an approval whose releasing process died between its two steps (`approved`
    committed, `executing` never claimed). The sweep calls this once a lease has passed: the
    action runs now, exactly once and re-decided against the current policy, like any release;
    or, if it may no longer run (expired, the agent suspended, the policy changed), the session
    goes to a person with the reason, which cancels the action. Never left `approved`.

    A session driven through the decision API is left alone, whoever asks: its runtime holds
    the approval and executes the action itself (a forged or duplicated message changes nothing)."""
    if AgentSession.objects.filter(pk=action_request.session_id, run_state=AgentSession.RunState.API).exists():
        return result_of(ActionRequest.objects.get(pk=action_request.pk))
    result = release(action_request, actor=SWEEPER)
    if result.decision != DENY:
        return result
    ar = ActionRequest.objects.get(pk=action_request.pk)
    if ar.status != Status.APPROVED:
        return result  # someone else finished it meanwhile
    if ar.expires_at is not None and ar.expires_at <= timezone.now():
        ar = expire_request(ar)
        return result_of(ar)
    session = AgentSession.objects.select_related("agent", "workflow").get(pk=ar.session_id)
    if session.is_live:
        sessions.hand_off(
            session,
            trigger=f"approved {ar.action} could not be executed: {result.reason}",
            context=handoff_context(session, ar),
        )
    ar.refresh_from_db()
    return GatewayResult(DENY, ar.tier, result.reason, str(ar.id), ar.status)


def _release_problem(ar: ActionRequest, session: AgentSession) -> str | None:
    if ar.status not in (Status.AWAITING_APPROVAL, Status.APPROVED):
        return f"the action is {ar.status.replace('_', ' ')}"
    if ar.tier != APPROVE:
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
    # The policy may have changed while the call waited: decide it again, as it would be now.
    # An approval never carries a call past what the current policy allows.
    now = decide(snapshot_for(session), ar.action, sealed, facts=session_facts(session))
    if now.tier is None or now.egress_refused:
        return f"the current policy refuses this call: {now.reason}"
    if now.tier >= HUMAN_ONLY:
        return "the current policy makes this action human-only (tier 4): it is never executed by an agent"
    return None


def _announce_resumable(ar: ActionRequest) -> None:
    transaction.on_commit(
        lambda: signals.session_resumable.send(AgentSession, session_id=ar.session_id, action_request_id=ar.pk)
    )


def reject(action_request: ActionRequest, *, reason: str, actor: Any) -> ActionRequest:
    """A reviewer said no: tell the agent why, and continue or end as the workflow says."""
    ended: AgentSession | None = None
    with transaction.atomic():
        ar = ActionRequest.objects.select_for_update().get(pk=action_request.pk)
        if ar.status != Status.AWAITING_APPROVAL:
            return ar
        session = AgentSession.objects.select_for_update().select_related("agent", "workflow").get(pk=ar.session_id)
        ar = lifecycle.action_move(
            ar,
            Status.REJECTED,
            actor=actor,
            session=session,
            locked=True,
            decided_reason=reason,
            sealed_params="",
            error=f"rejected by a reviewer: {reason}",
            details={"comment": reason},
        )
        on_reject = session.workflow.on_reject
        if on_reject == Workflow.OnReject.END:
            ended = sessions.end(session, reason="tier 3 action rejected", actor=actor)
        elif on_reject == Workflow.OnReject.HANDOFF:
            sessions.hand_off(
                session,
                trigger=f"a reviewer rejected {ar.action}: {reason}",
                context={**handoff_context(session, ar), "rejection": reason},
            )
        elif session.status == AgentSession.Status.AWAITING_APPROVAL:
            lifecycle.session_resume(session, actor=actor, action_request=ar)
            _announce_resumable(ar)
    if ended is not None:
        sessions.after_end_if_needed(ended)
    ar.refresh_from_db()
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
        ar = lifecycle.action_move(ar, Status.EXPIRED, actor=SWEEPER, locked=True, sealed_params="")
    session = AgentSession.objects.select_related("agent", "workflow").get(pk=ar.session_id)
    if session.is_live:
        sessions.hand_off(session, trigger=f"approval of {ar.action} expired", context=handoff_context(session, ar))
    return ar


class ReportRefused(Exception):
    pass


def report_result(action_request: ActionRequest, *, outcome: str, result: Any, error: str = "") -> ActionRequest:
    """An external runtime ran an allowed (or approved) action and says what happened. The
    result is stored as context rules allow (never-persist values fingerprinted) and audited."""
    with transaction.atomic():
        ar = ActionRequest.objects.select_for_update().get(pk=action_request.pk)
        if ar.status not in (Status.ALLOWED, Status.APPROVED):
            raise ReportRefused(
                f"the action is {ar.status.replace('_', ' ')}: only allowed or approved actions take a result"
            )
        session = AgentSession.objects.select_related("agent", "workflow").get(pk=ar.session_id)
        spec = snapshot_for(session).actions.get(ar.action)
        policy = context.load_policy()
        # A typed result passes the context rules; whatever remains, typed or not, passes the
        # one choke point for stored data.
        typed = (
            context.filter_result(result, policy) if isinstance(result, dict) and "data_object" in result else result
        )
        stored = context.persistable_params(typed, spec.data_objects if spec else (), policy)
        # The runtime ran the connector, so its error text may carry what ours would have
        # scrubbed (a connection string, a password): it passes the same scrub before it is kept.
        error = scrub(error)
        ar = lifecycle.action_move(
            ar,
            Status.REPORTED if outcome == "succeeded" else Status.FAILED,
            actor=session.agent,
            session=session,
            locked=True,
            # One kind per state: a failure the runtime reports is action.failed, as in-process.
            kind="action.reported" if outcome == "succeeded" else "action.failed",
            outcome=outcome,
            result=stored,
            error=error[:2000],
            executed_at=timezone.now(),
            details={"error": error[:500], **context.describe_access(stored if isinstance(stored, dict) else {})},
        )
        if outcome == "succeeded":
            raise_sensitivity(session, ar.action)
    ar.refresh_from_db()
    return ar
