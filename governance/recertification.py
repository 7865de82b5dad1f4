"""Recertification: an agent's effective access, with usage evidence from the audit trail."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from audit.models import AuditEvent
from governance.models import AgentIdentity, Campaign, ServiceCredential

UNUSED_DAYS = 90
USE_KINDS = ("action.allowed", "action.executing", "action.released", "action.reported", "action.executed")


def _unused_flag(agent: AgentIdentity) -> str:
    """Why a grant shows no use: a new agent has simply not had the time."""
    age = timezone.now() - agent.created_at
    if age < timedelta(days=UNUSED_DAYS):
        days = age.days
        return f"no use yet: the agent was created {days} day{'s' if days != 1 else ''} ago"
    return f"not used in {UNUSED_DAYS} days: consider revoking"


def agents_in_scope(scope: str, value: str) -> QuerySet[AgentIdentity]:
    agents = AgentIdentity.objects.exclude(status=AgentIdentity.Status.DEPROVISIONED)
    if scope == Campaign.Scope.OWNER:
        return agents.filter(owner__iexact=value)
    if scope == Campaign.Scope.SYSTEM:
        return agents.filter(workflows__grants__data_object__system__name=value).distinct()
    return agents


def _sequenced_then_pending(**filters: Any) -> tuple[QuerySet[AuditEvent], QuerySet[AuditEvent]]:
    """The events matching `filters`: those in the log, in log order, then the few the sequencer
    has not numbered yet, in write order. Two queries, each on its index: the kind indexes hold
    sequenced events only and `audit_unsequenced` the others (decision 0022)."""
    return (
        AuditEvent.objects.filter(seq__isnull=False, **filters).order_by("seq"),
        AuditEvent.objects.filter(seq__isnull=True, **filters).order_by("id"),
    )


def effective_access(agent: AgentIdentity) -> dict[str, Any]:
    """Workflows, grants (each with its last use), tiers, credentials and the agent's last use."""
    since = timezone.now() - timedelta(days=UNUSED_DAYS)
    used: dict[tuple[str, str, str], str] = {}
    # Every path that uses a grant writes one of these, naming the agent whoever the actor was:
    # the runner (executing, executed), an external runtime (allowed, reported), a reviewer's
    # approval of a tier 3 call (released).
    # Oldest first, so that each grant ends with its latest use.
    for events in _sequenced_then_pending(kind__in=USE_KINDS, details__agent=agent.name, at__gte=since):
        for workflow_name, details, at in events.values_list("workflow", "details", "at").iterator():
            for obj, mode in (details or {}).get("grants_used", []):
                used[(workflow_name, obj, mode)] = at.isoformat()
    sequenced, pending = _sequenced_then_pending(kind="session.started", details__agent=agent.name)
    last = (
        pending.reverse().values_list("at", flat=True).first()
        or sequenced.reverse().values_list("at", flat=True).first()
    )
    workflows: list[dict[str, Any]] = []
    systems: set[str] = set()
    for workflow in agent.workflows.prefetch_related("grants__data_object__system", "tiers__action_type"):
        grants = []
        for grant in workflow.grants.all():
            systems.add(grant.data_object.system.name)
            last_use = used.get((workflow.name, grant.data_object.name, grant.mode))
            grants.append(
                {
                    "data_object": grant.data_object.name,
                    "mode": grant.mode,
                    "sensitivity": grant.data_object.sensitivity,
                    "last_used": last_use,
                    "flag": None if last_use else _unused_flag(agent),
                }
            )
        workflows.append(
            {
                "name": workflow.name,
                "version": workflow.version,
                "grants": grants,
                "tiers": {t.action_type.name: t.tier for t in workflow.tiers.all()},
            }
        )
    credentials = [
        {"name": c.name, "system": c.system.name, "rotated_at": c.rotated_at.isoformat() if c.rotated_at else None}
        for c in ServiceCredential.objects.filter(system__name__in=systems).select_related("system")
    ]
    return {
        "agent": agent.name,
        "owner": agent.owner,
        "status": agent.status,
        "workflows": workflows,
        "credentials": credentials,
        "last_used": last.isoformat() if last else None,
        "collected_at": timezone.now().isoformat(),
    }
