"""Who calls the API: an agent runtime (agent key, session token) or a person (personal API
token, or an OIDC access token)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from agents import sessions
from agents.models import AgentKey, AgentSession, SecurityAlert, SessionToken
from governance.models import AgentIdentity, ApiToken

KEY_PREFIX, API_TOKEN_PREFIX = "wak_", "wpt_"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def agent_key_create(agent: AgentIdentity) -> str:
    """A new agent key; the only time it is seen in clear."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    AgentKey.objects.create(agent=agent, prefix=key[:12], key_hash=_digest(key))
    return key


def api_token_create(user: Any, name: str, days: int = 90) -> str:
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(
        user=user,
        name=name,
        prefix=token[:12],
        token_hash=_digest(token),
        expires_at=timezone.now() + timedelta(days=days),
    )
    return token


def _bearer(request: Request) -> str | None:
    header = authentication.get_authorization_header(request).decode("latin-1", "replace")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@dataclass
class AgentPrincipal:
    """The caller as DRF sees it: an agent, maybe within one session."""

    agent: AgentIdentity
    session: AgentSession | None = None
    is_authenticated: bool = True
    is_active: bool = True

    @property
    def pk(self) -> int:
        return self.agent.pk


class AgentKeyAuthentication(authentication.BaseAuthentication):
    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="warden-agent"'

    def authenticate(self, request: Request) -> tuple[AgentPrincipal, AgentKey] | None:
        key = _bearer(request)
        if key is None or not key.startswith(KEY_PREFIX):
            return None
        row = AgentKey.objects.select_related("agent").filter(key_hash=_digest(key)).first()
        if row is not None and row.revoked_at is not None:
            _revoked_token_used(
                f"a revoked agent key of agent {row.agent.name} was used",
                {"agent": row.agent.name, "key_prefix": row.prefix},
            )
        if row is None or row.revoked_at is not None:
            raise exceptions.AuthenticationFailed("unknown or revoked agent key")
        AgentKey.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
        return AgentPrincipal(row.agent), row


class SessionTokenAuthentication(authentication.BaseAuthentication):
    """The session token is checked fully by the gateway on every call; here it only names the caller."""

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="warden-session"'

    ended_ok = False  # status reads: see sessions.verify_token

    def authenticate(self, request: Request) -> tuple[AgentPrincipal, str] | None:
        token = _bearer(request)
        if token is None or not token.startswith(sessions.TOKEN_PREFIX):
            return None
        try:
            session, _ = sessions.verify_token(token, paused_ok=True, ended_ok=self.ended_ok)
        except sessions.TokenInvalid as exc:
            setattr(request._request, "warden_token_invalid", exc)  # noqa: B010 - the authorize view audits the refused call
            raise exceptions.AuthenticationFailed(exc.reason) from None
        return AgentPrincipal(session.agent, session), token


class PausedSessionTokenAuthentication(SessionTokenAuthentication):
    """For status reads: a session that waits for a reviewer, and for an hour a session that has
    ended (so a runtime reads that its call was rejected, and why, instead of raising an alert)."""

    ended_ok = True


def alert_if_revoked(token: str) -> None:
    """A credential of another kind than the endpoint takes is not checked by its
    authentication: if it is a revoked one, still raise the alert (a revoked credential in use
    is an alert wherever it is used)."""
    if token.startswith(sessions.TOKEN_PREFIX):
        row = SessionToken.objects.select_related("session").filter(token_hash=sessions.hash_token(token)).first()
        if row is not None and row.revoked_at is not None:
            sessions.raise_alert(
                SecurityAlert.Kind.REVOKED_TOKEN,
                f"a revoked token of session {row.session.id} was used",
                session=row.session,
            )
    elif token.startswith(KEY_PREFIX):
        key = AgentKey.objects.select_related("agent").filter(key_hash=_digest(token)).first()
        if key is not None and key.revoked_at is not None:
            _revoked_token_used(
                f"a revoked agent key of agent {key.agent.name} was used",
                {"agent": key.agent.name, "key_prefix": key.prefix},
            )
    elif token.startswith(API_TOKEN_PREFIX):
        api = ApiToken.objects.select_related("user").filter(token_hash=_digest(token)).first()
        if api is not None and api.revoked_at is not None:
            _revoked_token_used(
                f"a revoked API token of {api.user.get_username()} was used",
                {"user": api.user.get_username(), "token_prefix": api.prefix},
            )


def _revoked_token_used(summary: str, details: dict[str, Any]) -> None:
    """A revoked credential in use is someone holding a secret they should no longer have."""
    sessions.raise_alert(SecurityAlert.Kind.REVOKED_TOKEN, summary, details=details)


class PersonalTokenAuthentication(authentication.BaseAuthentication):
    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="warden"'

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        token = _bearer(request)
        if token is None or not token.startswith(API_TOKEN_PREFIX):
            return None
        row = ApiToken.objects.select_related("user").filter(token_hash=_digest(token)).first()
        if row is not None and row.revoked_at is not None:
            _revoked_token_used(
                f"a revoked API token of {row.user.get_username()} was used",
                {"user": row.user.get_username(), "token_prefix": row.prefix},
            )
        if row is None or row.revoked_at is not None or row.expires_at <= timezone.now() or not row.user.is_active:
            raise exceptions.AuthenticationFailed("unknown, expired or revoked API token")
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
        return row.user, row
