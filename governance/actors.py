"""Who changes governance state, and how they signed in.

Every governance service takes an explicit Actor, whatever the entry point (browser, policy
file on the CLI, a periodic task), so the rules about who may do what (step-up, separation
of duties) are checked in the service and cannot be skipped by calling it from elsewhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.conf import settings

from governance.roles import roles_of


class Channel(StrEnum):
    UI = "ui"  # a person signed in to the web app (OIDC, or the demo's dev login)
    CLI = "cli"  # an operator with a shell on a Warden host (policy_apply, agent_suspend, ...)
    SYSTEM = "system"  # Warden itself: deadlines, sweeps, scheduled rotation


@dataclass(frozen=True)
class Actor:
    label: str
    channel: Channel
    roles: frozenset[str] = frozenset()
    amr: tuple[str, ...] = ()
    acr: str = ""
    auth_time: float = 0.0
    user: Any = field(default=None, compare=False, repr=False)

    @property
    def audit_label(self) -> str:
        return self.label

    @classmethod
    def for_user(cls, user: Any, auth: dict[str, Any] | None = None) -> Actor:
        """A person, with the authentication context of their sign-in (amr, acr, auth_time)."""
        from audit.chain import label

        auth = auth or {}
        return cls(
            label=label(user),
            channel=Channel.UI,
            roles=roles_of(user),
            amr=tuple(auth.get("amr") or ()),
            acr=str(auth.get("acr") or ""),
            auth_time=float(auth.get("auth_time") or 0),
            user=user,
        )

    @classmethod
    def from_session(cls, user: Any, session: Any) -> Actor:
        from governance.oidc import SESSION_AUTH_CONTEXT

        auth = dict(session.get(SESSION_AUTH_CONTEXT) or {}) if session is not None else {}
        return cls.for_user(user, auth)

    @classmethod
    def cli(cls, name: str) -> Actor:
        """An operator at a shell. Recorded as cli:<name>; `name` should be the person's Warden account."""
        return cls(label=name if name.startswith("cli:") else f"cli:{name}", channel=Channel.CLI)

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(label=name, channel=Channel.SYSTEM)

    @property
    def stepped_up(self) -> bool:
        """A recent, multi-factor sign-in: `amr` has mfa (or `acr` is WARDEN_STEPUP_ACR), at most
        WARDEN_STEPUP_MAX_AGE seconds old."""
        strong = "mfa" in self.amr or bool(settings.WARDEN_STEPUP_ACR and self.acr == settings.WARDEN_STEPUP_ACR)
        return strong and time.time() - self.auth_time <= settings.WARDEN_STEPUP_MAX_AGE

    @property
    def identities(self) -> frozenset[str]:
        """Every name under which this actor may appear as an initiator or an author."""
        names = {self.label}
        if self.user is not None:
            names |= identities_of(self.user)
        return frozenset(n.lower() for n in names if n)

    def can(self, capability: str) -> bool:
        """What governance.roles lets this actor do. A person signed in to the UI has their roles'
        capabilities; an operator at a shell and Warden itself are trusted by where they run."""
        if self.channel != Channel.UI:
            return True
        from governance.roles import CAPABILITIES

        return any(capability in CAPABILITIES.get(role, ()) for role in self.roles)

    def auth_details(self) -> dict[str, Any]:
        """What the audit trail records about how the actor signed in."""
        if self.channel != Channel.UI:
            return {"channel": str(self.channel)}
        return {"channel": "ui", "amr": list(self.amr), "acr": self.acr, "auth_time": self.auth_time}


def as_actor(value: Any) -> Actor:
    """Callers that still pass a user or a label ("system:recertification", "cli:ops") get an Actor."""
    if isinstance(value, Actor):
        return value
    if isinstance(value, str):
        if value.startswith("cli:"):
            return Actor.cli(value)
        return Actor.system(value)
    return Actor.for_user(value)


def identities_of(user: Any) -> set[str]:
    """Every name under which a person may have initiated a session or changed a policy."""
    from audit.chain import label

    names = {label(user), user.get_username(), f"cli:{user.get_username()}"}
    if user.email:
        names |= {user.email, f"user:{user.email}", f"cli:{user.email}"}
    for identity in user.external_identities.all():
        names |= {identity.subject, f"oidc:{identity.subject}", f"cli:{identity.subject}"}
    return {n.lower() for n in names if n}
