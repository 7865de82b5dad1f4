"""Rate limits for every API endpoint.

Three keys: the agent and the session for runtimes, the person for audit readers, and the
client address for everyone, checked before authentication so that a flood of forged or
revoked tokens is limited too (DRF checks throttles only after authentication succeeds).
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from agents.api.auth import AgentPrincipal


class AgentThrottle(SimpleRateThrottle):
    scope = "agent"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        return f"throttle:agent:{user.agent.pk}" if isinstance(user, AgentPrincipal) else None


class SessionThrottle(SimpleRateThrottle):
    scope = "session"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        if isinstance(user, AgentPrincipal) and user.session is not None:
            return f"throttle:session:{user.session.pk}"
        return None


class PersonThrottle(SimpleRateThrottle):
    """Audit reads with a personal or OIDC token, per person."""

    scope = "person"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        if user is None or isinstance(user, AgentPrincipal) or not getattr(user, "is_authenticated", False):
            return None
        return f"throttle:person:{user.pk}"


class AddressThrottle(SimpleRateThrottle):
    """Every request, authenticated or not, per client address (REMOTE_ADDR, or the proxy's
    X-Forwarded-For entry when REST_FRAMEWORK's NUM_PROXIES says how many proxies there are)."""

    scope = "address"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        return f"throttle:address:{self.get_ident(request)}"


class WardenAPIView(APIView):
    """The base of every API view: the address throttle runs before authentication, the
    view's own throttles after it. A view without any throttle of its own is refused at import."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.throttle_classes:
            raise TypeError(f"{cls.__name__} has no throttle: every API endpoint is rate-limited")

    def perform_authentication(self, request: Request) -> None:
        throttle = AddressThrottle()
        if not throttle.allow_request(request, self):
            self.throttled(request, throttle.wait() or 1.0)
        super().perform_authentication(request)
        if not getattr(request.user, "is_authenticated", False):
            from agents.api.auth import _bearer, alert_if_revoked

            token = _bearer(request)
            if token:
                alert_if_revoked(token)
