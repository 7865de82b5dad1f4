"""Rate limits for every API endpoint.

Three keys: the agent and the session for runtimes, the person for audit readers, and the
client address for everyone, checked before authentication so that a flood of forged or
revoked tokens is limited too (DRF checks throttles only after authentication succeeds).

Each limit is a counter per key and window (django-ratelimit's fixed windows, each key's window
offset by a hash of the key): per request an add that starts the window's count, else an
increment, each atomic (with Redis three commands, as Django's incr checks the key first:
decision 0022). DRF's own
throttle keeps every request's timestamp for the window and rewrites that list on each request:
at the rates a busy runtime needs (600/s is 36,000 a minute) that cost about a millisecond a
request per limit, more than the decision itself (measured, decision 0021). A window admits up
to the limit; across a window's edge a caller can send up to twice the limit in a short time.
"""

from __future__ import annotations

import logging
from typing import Any

from django_ratelimit.core import get_usage
from redis.exceptions import RedisError
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from agents.api.auth import AgentPrincipal

logger = logging.getLogger("warden.api")


class RateLimitsUnavailable(APIException):
    """The counters' store (WARDEN_CACHE_URL) cannot be reached: refuse, decide nothing."""

    status_code = 503
    default_detail = "the rate-limit counters cannot be reached; nothing was done, try again later"
    default_code = "unavailable"


class _WindowThrottle(SimpleRateThrottle):
    """DRF's throttle interface and rates (REST_FRAMEWORK's DEFAULT_THROTTLE_RATES, by scope),
    counted by django-ratelimit. A cache that cannot count refuses the request (fail closed)."""

    retry_after = 1

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        try:
            usage = get_usage(
                request,
                group=self.scope,
                key=lambda group, req: key,
                rate=self.parse_rate(self.rate),
                increment=True,
            )
        except RedisError as exc:
            logger.error("rate-limit counters unreachable (WARDEN_CACHE_URL): %s", exc)
            raise RateLimitsUnavailable() from None
        if usage is None:  # RATELIMIT_ENABLE is off
            return True
        self.retry_after = max(int(usage["time_left"]), 1)
        return not usage["should_limit"]

    def wait(self) -> float:
        return self.retry_after


class AgentThrottle(_WindowThrottle):
    scope = "agent"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        return f"throttle:agent:{user.agent.pk}" if isinstance(user, AgentPrincipal) else None


class SessionThrottle(_WindowThrottle):
    scope = "session"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        if isinstance(user, AgentPrincipal) and user.session is not None:
            return f"throttle:session:{user.session.pk}"
        return None


class PersonThrottle(_WindowThrottle):
    """Audit reads with a personal or OIDC token, per person."""

    scope = "person"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        if user is None or isinstance(user, AgentPrincipal) or not getattr(user, "is_authenticated", False):
            return None
        return f"throttle:person:{user.pk}"


class AddressThrottle(_WindowThrottle):
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
