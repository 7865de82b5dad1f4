"""Provisioning by admins: every change needs an MFA step-up and is audited as `provisioning.*`
with the admin's identity and authentication context.

Workflow and context-rule edits go through the same path as policy files (normalized state,
validation, plan, apply), so the UI and `policy_apply` cannot disagree, versions are cut the
same way, and access reviews open the same way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

import audit
from agents.credentials import RotationFailed, credential_rotate
from agents.services import agent_identity_suspend
from approvals.services import DecisionRefused, _end_sessions
from audit.chain import label
from governance.models import AgentIdentity, ServiceCredential, Workflow
from governance.oidc import SESSION_AUTH_CONTEXT
from governance.policyfile import (
    PolicyError,
    apply_policy,
    from_database,
    from_document,
    load,
    to_document,
    validate,
)
from governance.policyfile.state import normalize_item


def auth_context(session: Any) -> dict[str, Any]:
    auth = dict(session.get(SESSION_AUTH_CONTEXT) or {}) if session is not None else {}
    return {k: auth.get(k) for k in ("method", "amr", "acr", "auth_time")}


def _record(kind: str, actor: Any, session: Any, **details: Any) -> None:
    audit.record(f"provisioning.{kind}", actor, outcome="applied", details={**details, "auth": auth_context(session)})


def agent_create(
    *,
    actor: Any,
    session: Any,
    name: str,
    owner: str,
    description: str = "",
    recertify_by: str = "",
    workflows: list[str] | None = None,
) -> AgentIdentity:
    state = from_database()
    name = (name or "").strip()
    if name in state["agents"]:
        raise DecisionRefused(f"an agent named {name!r} already exists")
    state["agents"][name] = normalize_item(
        "agents",
        {
            "owner": (owner or "").strip(),
            "description": description or "",
            "workflows": list(workflows or []),
            "recertify_by": recertify_by or None,
        },
    )
    _apply(state, actor, session, "agent_created", agent=name)
    return AgentIdentity.objects.get(name=name)


def agent_set_status(*, actor: Any, session: Any, agent: AgentIdentity, status: str) -> AgentIdentity:
    if status == AgentIdentity.Status.SUSPENDED:
        agent_identity_suspend(agent=agent, actor=actor, reason="suspended by an admin", auth=auth_context(session))
        return AgentIdentity.objects.get(pk=agent.pk)
    if status == AgentIdentity.Status.ACTIVE:
        if agent.status == AgentIdentity.Status.DEPROVISIONED:
            raise DecisionRefused("a deprovisioned agent cannot be reactivated; create a new identity")
        AgentIdentity.objects.filter(pk=agent.pk).update(status=status)
    elif status == AgentIdentity.Status.DEPROVISIONED:
        AgentIdentity.objects.filter(pk=agent.pk).update(status=status)
        agent.workflows.clear()
        _end_sessions(agent, actor, "agent deprovisioned")
    else:
        raise DecisionRefused(f"unknown status {status!r}")
    _record(f"agent_{status}", actor, session, agent=agent.name)
    return AgentIdentity.objects.get(pk=agent.pk)


def workflow_update(
    *,
    actor: Any,
    session: Any,
    name: str,
    expected_version: int,
    access: list[dict[str, str]],
    tiers: list[dict[str, Any]],
    max_session_seconds: int,
) -> Workflow:
    """Edit a workflow's access map and tiers. Refused if someone changed it since the form was
    loaded (optimistic version check), so no edit is silently overwritten."""
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().filter(name=name).first()
        if workflow is None:
            raise DecisionRefused(f"no workflow named {name!r}")
        if workflow.version != expected_version:
            raise DecisionRefused(
                f"{name} was changed by someone else since you opened it (now v{workflow.version}, "
                f"you edited v{expected_version}): reload and make your change again"
            )
        state = from_database()
        state["workflows"][name] = normalize_item(
            "workflows",
            {**state["workflows"][name], "access": access, "tiers": tiers, "max_session_seconds": max_session_seconds},
        )
        _apply(state, actor, session, "workflow_updated", workflow=name, from_version=expected_version)
    return Workflow.objects.get(name=name)


def context_rule_update(*, actor: Any, session: Any, data_type: str, handling: str, clear: str, persist: bool) -> None:
    state = from_database()
    if data_type not in state["context_rules"]:
        raise DecisionRefused(f"no context rule for {data_type!r}")
    state["context_rules"][data_type] = normalize_item(
        "context_rules", {**state["context_rules"][data_type], "handling": handling, "clear": clear, "persist": persist}
    )
    _apply(state, actor, session, "context_rule_updated", data_type=data_type)


def policy_upload(*, actor: Any, session: Any, text: str, apply: bool) -> list[Any]:
    """A policy file from the browser: preview the plan, or apply it. Same checks as policy_apply."""
    try:
        desired = from_document(load(text))
        changes = apply_policy(desired, actor=label(actor), dry_run=not apply, source="ui upload")
    except PolicyError as exc:
        raise DecisionRefused("; ".join(exc.errors[:20])) from None
    if apply and changes:
        _record("policy_applied", actor, session, changes=[str(c) for c in changes][:200])
    return changes


def credential_set(*, actor: Any, session: Any, credential: ServiceCredential, secret: str) -> None:
    if not secret:
        raise DecisionRefused("enter the new secret")
    credential.set_secret(secret)
    credential.save()
    _record("credential_set", actor, session, credential=credential.name)  # never the secret


def credential_rotate_now(*, actor: Any, session: Any, credential: ServiceCredential) -> None:
    try:
        credential_rotate(credential, actor=actor)
    except RotationFailed as exc:
        raise DecisionRefused(f"rotation failed, the old secret stays in use: {exc}") from None
    _record("credential_rotated", actor, session, credential=credential.name)


def _apply(state: Any, actor: Any, session: Any, kind: str, **details: Any) -> None:
    errors = validate(to_document(state))
    if errors:
        raise DecisionRefused("; ".join(errors[:20]))
    try:
        changes = apply_policy(state, actor=label(actor), source="provisioning ui")
    except PolicyError as exc:
        raise DecisionRefused("; ".join(exc.errors[:20])) from None
    _record(kind, actor, session, changes=[str(c) for c in changes], **details)


def parse_date(value: str) -> str:
    if not value:
        return ""
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise DecisionRefused(f"{value!r} is not a date (YYYY-MM-DD)") from None
