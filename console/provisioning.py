"""The provisioning UI's calls into governance.services: each view hands over the signed-in
user with the session's authentication context (amr, acr, auth_time) as an Actor.

The rules (admin role, MFA step-up, reasons, validation) live in the services, so they hold
for the UI, `policy_apply` and every other entry point alike.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from agents.credentials import RotationFailed, credential_rotate
from governance import services
from governance.actors import Actor
from governance.models import AgentIdentity, ServiceCredential, Workflow
from governance.oidc import SESSION_AUTH_CONTEXT
from governance.policyfile import PolicyError, from_database, from_document, load
from governance.policyfile.state import package_of
from governance.services import Refused as DecisionRefused


def auth_context(session: Any) -> dict[str, Any]:
    auth = dict(session.get(SESSION_AUTH_CONTEXT) or {}) if session is not None else {}
    return {k: auth.get(k) for k in ("method", "amr", "acr", "auth_time")}


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
    return services.agent_identity_create(
        actor=Actor.from_session(actor, session),
        name=name,
        owner=owner,
        description=description,
        recertify_by=recertify_by or None,
        workflows=workflows,
    )


def agent_set_status(*, actor: Any, session: Any, agent: AgentIdentity, status: str, reason: str = "") -> AgentIdentity:
    who = Actor.from_session(actor, session)
    reason = reason or f"{status} by an admin in the provisioning UI"
    if status == AgentIdentity.Status.SUSPENDED:
        return services.agent_identity_suspend(actor=who, agent=agent, reason=reason)
    if status == AgentIdentity.Status.ACTIVE:
        return services.agent_identity_reactivate(actor=who, agent=agent, reason=reason)
    if status == AgentIdentity.Status.DEPROVISIONED:
        return services.agent_identity_deprovision(actor=who, agent=agent, reason=reason)
    raise DecisionRefused(f"unknown status {status!r}")


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
    return services.workflow_update(
        actor=Actor.from_session(actor, session),
        name=name,
        expected_version=expected_version,
        access=access,
        tiers=tiers,
        max_session_seconds=max_session_seconds,
    )


def context_rule_update(*, actor: Any, session: Any, data_type: str, handling: str, clear: str, persist: bool) -> None:
    services.context_rule_update(
        actor=Actor.from_session(actor, session), data_type=data_type, handling=handling, clear=clear, persist=persist
    )


def policy_upload(*, actor: Any, session: Any, text: str, apply: bool, expect_plan: str | None = None) -> list[Any]:
    """A policy file from the browser: preview the plan, or apply it. Same checks as policy_apply.
    An apply carries the fingerprint of the plan its preview showed (services.plan_digest) and is
    refused if the plan is no longer that one."""
    try:
        doc = load(text, filename="upload", current=from_database())
    except PolicyError as exc:
        raise DecisionRefused("; ".join(exc.errors[:20])) from None
    return services.policy_apply(
        actor=Actor.from_session(actor, session),
        desired=from_document(doc),
        dry_run=not apply,
        source="ui upload",
        package=package_of(doc),
        expect_plan=expect_plan if apply else None,
    )


def credential_set(*, actor: Any, session: Any, credential: ServiceCredential, secret: str) -> None:
    services.credential_set(actor=Actor.from_session(actor, session), credential=credential, secret=secret)


def credential_rotate_now(*, actor: Any, session: Any, credential: ServiceCredential) -> None:
    who = Actor.from_session(actor, session)
    services.require_stepup(who)
    try:
        credential_rotate(credential, actor=who)
    except RotationFailed as exc:
        raise DecisionRefused(f"rotation failed, the old secret stays in use: {exc}") from None


def parse_date(value: str) -> str:
    if not value:
        return ""
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise DecisionRefused(f"{value!r} is not a date (YYYY-MM-DD)") from None
