"""Policy state: whole policy files, and the provisioning UI's edits of one workflow or one
context rule, which go through the same normalized state, validation, plan and apply, so the
UI and `policy_apply` cannot disagree. Credentials are set here too (never their secret in
the trail)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

import audit
from governance.actors import Actor, Channel, as_actor
from governance.models import ServiceCredential, Workflow
from governance.roles import Role
from governance.services.base import Refused, finishing, require_stepup


class PolicyRefused(Refused):
    """A policy that cannot be applied: every problem, and the plan when it is the plan that is refused."""

    def __init__(self, errors: list[str], changes: list[Any]):
        super().__init__("; ".join(errors[:20]))
        self.errors = errors
        self.changes = changes


def _require_admin(actor: Actor) -> None:
    if actor.channel == Channel.UI and Role.ADMIN not in actor.roles:
        raise Refused("this change needs the admin role")
    require_stepup(actor)


def policy_apply(
    *,
    actor: Any,
    desired: dict[str, Any],
    dry_run: bool = False,
    source: str = "",
    package: str | None = None,
    allow_delete: bool = False,
    expect_plan: str | None = None,
) -> list[Any]:
    """Plan a policy file of `package` against the database and, unless dry_run, apply it in one
    transaction with its audit events. Only the package's objects change (package=None: `desired`
    is the whole configuration, every package); removing anything needs allow_delete. Applying needs the admin role and a step-up in the browser; an operator at a
    shell is recorded as cli:<name>."""
    from governance.policyfile import PolicyError, apply_policy

    actor = as_actor(actor)
    if not dry_run:
        _require_admin(actor)
    try:
        with finishing(), transaction.atomic():
            changes = apply_policy(
                desired, actor=actor.label, dry_run=dry_run, source=source, package=package, allow_delete=allow_delete
            )
            if expect_plan is not None and plan_digest(changes) != expect_plan:
                # Someone changed the configuration since the plan was shown: applying now would
                # make changes nobody reviewed. Rolled back with everything above.
                raise Refused(
                    "the configuration changed since this plan was previewed: review the new plan and apply that"
                )
            if changes and not dry_run and actor.channel == Channel.UI:
                audit.record(
                    "provisioning.policy_applied",
                    actor,
                    outcome="applied",
                    details={
                        "source": source,
                        "changes": [str(c) for c in changes][:200],
                        "auth": actor.auth_details(),
                    },
                )
    except PolicyError as exc:
        raise PolicyRefused(exc.errors, exc.changes) from None
    return changes


def plan_digest(changes: list[Any]) -> str:
    """What a preview showed, as a short fingerprint the apply must match (see policy_apply)."""
    import hashlib

    return hashlib.sha256("\n".join(str(c) for c in changes).encode()).hexdigest()


def apply_state(state: dict[str, Any], *, actor: Actor, kind: str, details: dict[str, Any]) -> list[Any]:
    """An edit from the provisioning UI: validate the whole resulting state, apply it and record
    `provisioning.<kind>` in the same transaction."""
    from governance.policyfile import PolicyError, apply_policy, to_document, validate

    _require_admin(actor)
    errors = validate(to_document(state))
    if errors:
        raise Refused("; ".join(errors[:20]))
    try:
        with finishing(), transaction.atomic():
            changes = apply_policy(state, actor=actor.label, source="provisioning ui")
            audit.record(
                f"provisioning.{kind}",
                actor,
                outcome="applied",
                details={**details, "changes": [str(c) for c in changes], "auth": actor.auth_details()},
            )
    except PolicyError as exc:
        raise Refused("; ".join(exc.errors[:20])) from None
    return changes


def workflow_update(
    *,
    actor: Actor,
    name: str,
    expected_version: int,
    access: list[dict[str, str]],
    tiers: list[dict[str, Any]],
    max_session_seconds: int,
) -> Workflow:
    """Edit a workflow's access map and tiers. Refused if someone changed it since the form was
    loaded (optimistic version check), so no edit is silently overwritten."""
    from governance.policyfile import from_database
    from governance.policyfile.state import normalize_item

    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().filter(name=name, archived_at__isnull=True).first()
        if workflow is None:
            raise Refused(f"no workflow named {name!r} (or it is archived)")
        if workflow.version != expected_version:
            raise Refused(
                f"{name} was changed by someone else since you opened it (now v{workflow.version}, "
                f"you edited v{expected_version}): reload and make your change again"
            )
        state = from_database()
        state["workflows"][name] = normalize_item(
            "workflows",
            {**state["workflows"][name], "access": access, "tiers": tiers, "max_session_seconds": max_session_seconds},
        )
        apply_state(
            state, actor=actor, kind="workflow_updated", details={"workflow": name, "from_version": expected_version}
        )
    return Workflow.objects.get(name=name)


def context_rule_update(*, actor: Actor, data_type: str, handling: str, clear: str, persist: bool) -> None:
    from governance.policyfile import from_database
    from governance.policyfile.state import normalize_item

    state = from_database()
    if data_type not in state["context_rules"]:
        raise Refused(f"no context rule for {data_type!r}")
    state["context_rules"][data_type] = normalize_item(
        "context_rules", {**state["context_rules"][data_type], "handling": handling, "clear": clear, "persist": persist}
    )
    apply_state(state, actor=actor, kind="context_rule_updated", details={"data_type": data_type})


def credential_set(*, actor: Actor, credential: ServiceCredential, secret: str) -> None:
    """Replace a credential's secret; the event names the credential, never the secret."""
    _require_admin(actor)
    if not secret:
        raise Refused("enter the new secret")
    with transaction.atomic():
        locked = ServiceCredential.objects.select_for_update().get(pk=credential.pk)
        locked.set_secret(secret)
        locked.save()
        audit.record(
            "provisioning.credential_set",
            actor,
            system=locked.system.name,
            outcome="applied",
            details={"credential": locked.name, "auth": actor.auth_details()},
        )
