"""Human roles. A role is a Django group of the same name; at OIDC login the groups claim
decides which a user holds (see governance.oidc)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    REVIEWER = "reviewer"
    ADMIN = "admin"
    COMPLIANCE = "compliance"
    SECURITY = "security"


class Capability(models.TextChoices):
    """What a role lets a person do. Views, API permissions, services and templates ask
    `can(user, capability)`; no role names are hard-coded anywhere else."""

    REVIEW = "review"  # decide tier 3 requests
    HANDLE_HANDOFFS = "handle_handoffs"
    SEE_ALERTS = "see_alerts"  # security alerts, and the kill switch from them
    PROVISION = "provision"  # agent identities, workflows, rules, credentials, policy files
    READ_GOVERNANCE = "read_governance"  # access reviews and workflow versions
    DECIDE_ACCESS_REVIEWS = "decide_access_reviews"
    RECERTIFY = "recertify"  # campaigns
    AUDIT = "audit"  # search, verify and export the audit trail


CAPABILITIES: dict[str, frozenset[str]] = {
    Role.REVIEWER: frozenset({Capability.REVIEW, Capability.HANDLE_HANDOFFS}),
    Role.ADMIN: frozenset({Capability.PROVISION, Capability.READ_GOVERNANCE, Capability.DECIDE_ACCESS_REVIEWS}),
    Role.COMPLIANCE: frozenset(
        {Capability.READ_GOVERNANCE, Capability.DECIDE_ACCESS_REVIEWS, Capability.RECERTIFY, Capability.AUDIT}
    ),
    Role.SECURITY: frozenset({Capability.SEE_ALERTS, Capability.AUDIT}),
}


def capabilities_of(user: Any) -> frozenset[str]:
    return frozenset(c for role in roles_of(user) for c in CAPABILITIES.get(role, ()))


def can(user: Any, capability: str) -> bool:
    return capability in capabilities_of(user)


def idp_group_for(role: str) -> str:
    """The IdP group that grants a role (WARDEN_ROLE_GROUPS, default warden-<role>s / warden-<role>)."""
    return settings.WARDEN_ROLE_GROUPS[role]


def roles_of(user: Any) -> frozenset[str]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_warden_roles", None)
    if cached is None:
        cached = frozenset(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
        user._warden_roles = cached
    return cached


def has_role(user: Any, role: str) -> bool:
    return role in roles_of(user)


def set_roles(user: Any, roles: set[str]) -> None:
    from django.contrib.auth.models import Group

    keep = list(user.groups.exclude(name__in=Role.values))
    wanted = [Group.objects.get_or_create(name=r)[0] for r in sorted(roles)]
    user.groups.set(keep + wanted)
    user._warden_roles = frozenset(roles)
