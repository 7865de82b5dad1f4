"""The Claude runner: the tool-use loop, with every tool call sent through the gateway.

The loop keeps all of its state in the AgentSession row (the conversation after context
rules, the tool results of the current step, the step counter), so that a worker that dies
at any point can be replaced by another that carries on: tool calls are replayed by their
tool_use id, which the gateway never decides or executes twice.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import anthropic
from anthropic.types import ToolParam
from django.conf import settings
from django.db import transaction
from django.utils import timezone

import audit
from agents import context, destinations, gateway, sessions
from agents.models import AgentSession, SessionToken
from governance.models import Tier, TierAssignment

log = logging.getLogger(__name__)
RunState = AgentSession.RunState


def tool_name(action: str) -> str:
    """Tool names may not contain dots (^[a-zA-Z0-9_-]{1,64}$)."""
    return action.replace(".", "__")


def action_name(tool: str) -> str:
    return tool.replace("__", ".")


def make_client() -> anthropic.Anthropic:
    kwargs: dict[str, Any] = {
        "api_key": settings.ANTHROPIC_API_KEY or "offline-model-server",
        "max_retries": settings.WARDEN_MODEL_MAX_RETRIES,
        "timeout": settings.WARDEN_MODEL_TIMEOUT,
    }
    if settings.ANTHROPIC_BASE_URL:
        kwargs["base_url"] = settings.ANTHROPIC_BASE_URL
    return anthropic.Anthropic(**kwargs)


def tools_for(session: AgentSession) -> list[ToolParam]:
    """The actions this workflow lets an agent attempt. Human-only (tier 4) actions are not offered."""
    assignments = TierAssignment.objects.filter(workflow=session.workflow, tier__lt=Tier.HUMAN_ONLY).select_related(
        "action_type"
    )
    return [
        {
            "name": tool_name(t.action_type.name),
            "description": t.action_type.description or t.action_type.name,
            "input_schema": t.action_type.params_schema or {"type": "object"},
        }
        for t in assignments.order_by("action_type__name")
    ]


def system_prompt(session: AgentSession) -> str:
    return (
        f"You are {session.agent.name}, an automated agent working under Warden's governance.\n"
        f"Workflow: {session.workflow.name}\n{session.workflow.description}\n"
        "Use only the tools you are given. Some actions wait for a human approval. When a tool call "
        "is refused, do not try to work around the refusal: explain it in your final answer."
    )


# --- claiming the session --------------------------------------------------------------------


def _lease_until() -> Any:
    return timezone.now() + timedelta(seconds=settings.WARDEN_RUNNER_LEASE_SECONDS)


def claim(session_id: Any, *, from_state: str) -> bool:
    """Take the session for this worker with a conditional update; False if someone else has it."""
    return (
        AgentSession.objects.filter(pk=session_id, run_state=from_state, status=AgentSession.Status.ACTIVE).update(
            run_state=RunState.RUNNING, run_lease_until=_lease_until()
        )
        == 1
    )


def take_over_stalled(session_id: Any) -> bool:
    """A worker died while running this session (its lease ran out): carry on where it stopped."""
    return (
        AgentSession.objects.filter(
            pk=session_id,
            run_state=RunState.RUNNING,
            status=AgentSession.Status.ACTIVE,
            run_lease_until__lt=timezone.now(),
        ).update(run_lease_until=_lease_until())
        == 1
    )


def _renew(session: AgentSession, token: str | None = None) -> bool:
    """Extend this worker's lease before its next step; False when the session is no longer its.

    The lease's owner is the worker holding the session's live token: each claim reissues the
    token (revoking the one before), so a worker that lost its lease to the sweep and was only
    slow finds its token revoked here and stops, even though the session is running again under
    another worker."""
    mine = AgentSession.objects.filter(pk=session.pk, run_state=RunState.RUNNING, status=AgentSession.Status.ACTIVE)
    if token is not None:
        mine = mine.filter(
            pk__in=SessionToken.objects.filter(
                session=session.pk, token_hash=sessions.hash_token(token), revoked_at__isnull=True
            ).values("session")
        )
    return mine.update(run_lease_until=_lease_until()) == 1


def _save(session: AgentSession, **fields: Any) -> None:
    for key, value in fields.items():
        setattr(session, key, value)
    AgentSession.objects.filter(pk=session.pk).update(**fields)


# --- the loop --------------------------------------------------------------------------------


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return content if isinstance(content, list) else []


def _tool_uses(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in _blocks(message) if b.get("type") == "tool_use"] if message.get("role") == "assistant" else []


def _stored_assistant(response: Any, session: AgentSession, ctx: context.ContextPolicy) -> dict[str, Any]:
    content = []
    # One snapshot for the whole turn, read at the current policy version (one query, not one per tool use).
    actions = gateway._snapshot(session.workflow).actions if any(b.type == "tool_use" for b in response.content) else {}
    for block in response.content:
        if block.type == "text":
            content.append({"type": "text", "text": block.text})
        elif block.type == "tool_use":
            spec = actions.get(action_name(block.name))
            safe_input = context.persistable_params(block.input, spec.data_objects if spec else (), ctx)
            content.append({"type": "tool_use", "id": block.id, "name": block.name, "input": safe_input})
    return {"role": "assistant", "content": content}


def _clear_step_data(session: AgentSession) -> None:
    """Data marked "clear after step" leaves the stored conversation when the next step begins."""
    keep, conversation = [], session.conversation
    for entry in session.clear_after_step:
        if entry["step"] >= session.step:
            keep.append(entry)
            continue
        block = conversation[entry["message"]]["content"][entry["block"]]
        try:
            document = json.loads(block["content"])
        except (ValueError, TypeError, KeyError):
            continue
        block["content"] = json.dumps(context.clear_paths(document, entry["paths"]), ensure_ascii=False)
    _save(session, conversation=conversation, clear_after_step=keep)


def _tool_result(block_id: str, outcome: gateway.GatewayResult) -> dict[str, Any]:
    if outcome.executed:
        return {
            "type": "tool_result",
            "tool_use_id": block_id,
            "content": json.dumps(outcome.result, ensure_ascii=False),
        }
    reason = outcome.error or outcome.reason or outcome.status
    return {
        "type": "tool_result",
        "tool_use_id": block_id,
        "is_error": True,
        "content": f"Refused by Warden ({outcome.decision}, {outcome.status or 'not executed'}): {reason}",
    }


def run(session_id: Any) -> str:
    """Run (or carry on) a claimed session until it completes, pauses or ends. Returns its run state."""
    session = AgentSession.objects.select_related("agent", "workflow").get(pk=session_id)
    token = sessions.reissue_token(session)
    client = make_client()
    ctx = context.load_policy()
    while True:
        session.refresh_from_db()
        if session.status != AgentSession.Status.ACTIVE or not _renew(session, token):
            return session.run_state
        if session.step >= settings.WARDEN_MAX_STEPS and not _tool_uses(session.conversation[-1]):
            sessions.hand_off(
                session,
                trigger=f"the step limit ({settings.WARDEN_MAX_STEPS}) was reached",
                context=gateway.handoff_context(session),
            )
            return RunState.DONE
        uses = _tool_uses(session.conversation[-1]) if session.conversation else []
        if uses:
            state = _run_tools(session, token, uses, ctx)
            if state is not None:
                return state
            continue
        state = _call_model(session, client, ctx)
        if state is not None:
            return state


def _run_tools(session: AgentSession, token: str, uses: list[dict[str, Any]], ctx: context.ContextPolicy) -> str | None:
    results = {r["tool_use_id"]: r for r in session.pending_tool_uses}
    for block in uses:
        if block["id"] in results:
            continue
        outcome = gateway.authorize(token, action_name(block["name"]), block["input"], tool_use_id=block["id"])
        session.refresh_from_db()
        if outcome.decision == gateway.PENDING:
            AgentSession.objects.filter(pk=session.pk, run_state=RunState.RUNNING).update(run_state=RunState.PAUSED)
            return RunState.PAUSED
        if not session.is_live:
            return RunState.DONE  # terminated (tier 4) or handed off (connector failure)
        result = _tool_result(block["id"], outcome)
        entry = {
            "tool_use_id": block["id"],
            "result": result,
            "failed": outcome.is_error,
            "step_paths": context.step_paths(outcome.result, ctx) if outcome.executed else [],
        }
        results[block["id"]] = entry
        _save(session, pending_tool_uses=[*session.pending_tool_uses, entry])
    ordered = [results[b["id"]] for b in uses]
    index = len(session.conversation)
    clear = [*session.clear_after_step]
    for j, entry in enumerate(ordered):
        if entry["step_paths"]:
            clear.append({"step": session.step + 1, "message": index, "block": j, "paths": entry["step_paths"]})
    failures = session.consecutive_failures + 1 if all(e["failed"] for e in ordered) else 0
    _save(
        session,
        conversation=[*session.conversation, {"role": "user", "content": [e["result"] for e in ordered]}],
        pending_tool_uses=[],
        clear_after_step=clear,
        consecutive_failures=failures,
    )
    if failures >= settings.WARDEN_MAX_CONSECUTIVE_FAILURES:
        sessions.hand_off(
            session,
            trigger=f"{failures} steps in a row had only refused or failed tool calls",
            context=gateway.handoff_context(session),
        )
        return RunState.DONE
    return None


def _call_model(session: AgentSession, client: anthropic.Anthropic, ctx: context.ContextPolicy) -> str | None:
    _save(session, step=session.step + 1)
    _clear_step_data(session)
    try:
        response = client.messages.create(
            model=settings.WARDEN_MODEL,
            max_tokens=settings.WARDEN_MAX_TOKENS,
            system=system_prompt(session),
            tools=tools_for(session),
            messages=session.conversation,
        )
    except anthropic.APIError as exc:
        status = getattr(exc, "status_code", None)
        log.warning("model API error in session %s: %s", session.pk, type(exc).__name__)
        sessions.hand_off(
            session,
            trigger=f"model API error ({type(exc).__name__}{f' {status}' if status else ''})",
            context=gateway.handoff_context(session),
        )
        return RunState.DONE
    message = _stored_assistant(response, session, ctx)
    if response.stop_reason == "tool_use" and _tool_uses(message):
        with transaction.atomic():
            _save(session, conversation=[*session.conversation, message])
        return None
    text = "\n".join(b["text"] for b in message["content"] if b["type"] == "text").strip()
    session.refresh_from_db()
    problem = destinations.final_answer_problem(gateway._snapshot(session.workflow), session.data_sensitivity)
    if problem:
        audit.record(
            "egress.refused",
            session.agent,
            session=session,
            workflow=session.workflow,
            outcome="withheld",
            details={"reason": problem, "what": "final answer"},
        )
        sessions.raise_alert(
            "exfiltration",
            f"the final answer of session {session.pk} was withheld: {problem}",
            session=session,
            severity="medium",
        )
        text = f"[withheld by Warden: {problem}]"
    sessions.terminate(
        session,
        reason="completed",
        actor=f"agent:{session.agent.name}",
        status=AgentSession.Status.COMPLETED,
        final_answer=text,
    )
    return RunState.DONE
