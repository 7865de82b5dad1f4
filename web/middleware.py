"""Project-wide HTTP hygiene: security headers, and idle and absolute session lifetimes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
    "form-action 'self'{idp}"
)


# Swagger UI (at /api/docs/) sets element styles from its script; scripts stay 'self' only.
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def _idp_origins() -> str:
    """Logging out posts a form that redirects to the IdP: form-action must allow its origin."""
    origins = set()
    for url in (settings.OIDC_OP_END_SESSION_ENDPOINT, settings.OIDC_OP_AUTHORIZATION_ENDPOINT):
        parts = urlsplit(url or "")
        if parts.scheme and parts.netloc:
            origins.add(f"{parts.scheme}://{parts.netloc}")
    return "".join(f" {o}" for o in sorted(origins))


class SecurityHeadersMiddleware:
    """A Content-Security-Policy without CDNs or inline code, and a strict referrer policy."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith("/api/docs/"):
            response.setdefault("Content-Security-Policy", DOCS_CSP.format(idp=_idp_origins()))
        elif not request.path.startswith("/admin/"):  # Django's admin ships inline scripts
            response.setdefault("Content-Security-Policy", CSP.format(idp=_idp_origins()))
        response.setdefault("Referrer-Policy", "same-origin")
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


BACKGROUND_HEADER = "X-Warden-Background"


def is_background(request: HttpRequest) -> bool:
    """A request no person made: an htmx poll from an element marked with
    `hx-headers='{"X-Warden-Background": "1"}'`. A client can only shorten its own session by
    sending the marker, so it needs no proof."""
    return request.headers.get("HX-Request") == "true" and request.headers.get(BACKGROUND_HEADER) == "1"


class SessionLifetimeMiddleware:
    """Log out after WARDEN_SESSION_IDLE_SECONDS without a request from the person, or
    WARDEN_SESSION_MAX_SECONDS after login, whichever comes first. Background polls (the queue's
    one-second refresh) are served but do not count as activity: an unattended screen goes idle."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            started = request.session.setdefault("warden_login_at", now)
            last = request.session.get("warden_seen_at", now)
            if now - last > settings.WARDEN_SESSION_IDLE_SECONDS or now - started > settings.WARDEN_SESSION_MAX_SECONDS:
                logout(request)
                target = f"{settings.LOGIN_URL}?expired=1"
                if request.headers.get("HX-Request") == "true":
                    # htmx would swap a redirect's page into the polled element; send the whole page there.
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = target
                    return response
                return redirect(target)
            if not is_background(request):
                if now - last > 30:  # write the session at most every 30 s
                    request.session["warden_seen_at"] = now
                request.session.setdefault("warden_seen_at", now)
        return self.get_response(request)


class RejectNulMiddleware:
    """PostgreSQL text cannot hold NUL characters; a query string or form that carries one is
    refused here with a clear 400 instead of failing deep inside a database write."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        def has_nul(query: Any) -> bool:
            return any("\x00" in key or any("\x00" in v for v in values) for key, values in query.lists())

        form = (
            request.POST
            if request.method == "POST"
            and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
            else None
        )
        if "\x00" in request.path or has_nul(request.GET) or (form is not None and has_nul(form)):
            if request.path.startswith("/api/"):
                body = (
                    '{"type": "urn:warden:problem:invalid-request", "title": "Bad Request", "status": 400, '
                    '"detail": "the request contains NUL characters"}'
                )
                return HttpResponse(body, status=400, content_type="application/problem+json")
            return HttpResponse("The request contains NUL characters.", status=400, content_type="text/plain")
        return self.get_response(request)
