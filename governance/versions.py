"""What changed between two versions of a workflow, in words a reviewer can check."""

from __future__ import annotations

from typing import Any


def _condition(c: dict[str, Any]) -> str:
    target = f"list {c['list']}" if c.get("list") else repr(c.get("value"))
    return f"{c.get('param')} {c.get('op')} {target} -> tier {c.get('tier')}"


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Lines starting with + (added), - (removed) or ~ (changed)."""
    lines: list[str] = []
    old_grants = {(g["data_object"], g["mode"]) for g in old.get("access", [])}
    new_grants = {(g["data_object"], g["mode"]) for g in new.get("access", [])}
    lines += [f"+ grant {mode} on {obj}" for obj, mode in sorted(new_grants - old_grants)]
    lines += [f"- grant {mode} on {obj}" for obj, mode in sorted(old_grants - new_grants)]
    old_tiers = {t["action"]: t for t in old.get("tiers", [])}
    new_tiers = {t["action"]: t for t in new.get("tiers", [])}
    for action in sorted(new_tiers.keys() - old_tiers.keys()):
        lines.append(f"+ {action} at tier {new_tiers[action]['tier']}")
    for action in sorted(old_tiers.keys() - new_tiers.keys()):
        lines.append(f"- {action} (was tier {old_tiers[action]['tier']})")
    for action in sorted(old_tiers.keys() & new_tiers.keys()):
        a, b = old_tiers[action], new_tiers[action]
        if a["tier"] != b["tier"]:
            lines.append(f"~ {action}: tier {a['tier']} -> {b['tier']}")
        if a.get("quorum", 1) != b.get("quorum", 1):
            lines.append(f"~ {action}: quorum {a.get('quorum', 1)} -> {b.get('quorum', 1)}")
        old_conditions = {_condition(c) for c in a.get("conditions", [])}
        new_conditions = {_condition(c) for c in b.get("conditions", [])}
        lines += [f"+ {action}: condition {c}" for c in sorted(new_conditions - old_conditions)]
        lines += [f"- {action}: condition {c}" for c in sorted(old_conditions - new_conditions)]
    for key in ("max_session_seconds", "owner", "on_reject", "description"):
        if old.get(key) != new.get(key):
            lines.append(f"~ {key}: {old.get(key)!r} -> {new.get(key)!r}")
    old_dest = {repr(sorted(d.items())) for d in old.get("destinations", [])}
    new_dest = {repr(sorted(d.items())) for d in new.get("destinations", [])}
    lines += [f"+ destination {d}" for d in sorted(new_dest - old_dest)]
    lines += [f"- destination {d}" for d in sorted(old_dest - new_dest)]
    return lines


def access_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """A change to the access map or the tiers (both sorted in the stored specs): what opens access reviews."""
    return old.get("access") != new.get("access") or old.get("tiers") != new.get("tiers")


# --- The policy version: one value every governance change moves (decision 0015) -------------

_BUMP = (
    "INSERT INTO governance_policyversion (id, version) VALUES (1, %s) "
    "ON CONFLICT (id) DO UPDATE SET version = excluded.version"
)
CURRENT_SQL = "SELECT version FROM governance_policyversion WHERE id = 1"


def current() -> int | None:
    """The policy version as committed (or as this transaction changed it); None before the first."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(CURRENT_SQL)
        row = cursor.fetchone()
    return row[0] if row else None


def bump(*args: Any, **kwargs: Any) -> None:
    """A governance change: give the policy a new version, in the transaction of the change, so
    that every process sees the change and the new version together, or neither."""
    import secrets

    from django.db import connection

    if str(kwargs.get("action", "post_")).startswith("pre_"):
        return  # m2m_changed: the post_ signal of the same change bumps

    with connection.cursor() as cursor:
        cursor.execute(_BUMP, [secrets.randbits(62)])


def connect_signals() -> None:
    """Every save or delete of what a decision, a snapshot or a credential lookup reads bumps
    the version (QuerySet.update() and bulk_create() send no signal: the services that use them
    on these models also save the workflow or the credential in the same transaction)."""
    from django.db.models.signals import m2m_changed, post_delete, post_save

    from governance import models

    for model in (
        models.System,
        models.DataObject,
        models.ActionType,
        models.ValueList,
        models.Workflow,
        models.AccessGrant,
        models.TierAssignment,
        models.ContextRule,
        models.AgentIdentity,
        models.ServiceCredential,
    ):
        post_save.connect(bump, sender=model, dispatch_uid=f"policy-version-save-{model.__name__}")
        post_delete.connect(bump, sender=model, dispatch_uid=f"policy-version-delete-{model.__name__}")
    for through in (models.ActionType.data_objects.through, models.AgentIdentity.workflows.through):
        m2m_changed.connect(bump, sender=through, dispatch_uid=f"policy-version-m2m-{through.__name__}")
