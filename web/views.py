from __future__ import annotations

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

import audit
from governance.models import AgentIdentity, Workflow
from governance.oidc import SESSION_AUTH_CONTEXT, logout_url, safe_next


@login_required
def home(request: HttpRequest) -> HttpResponse:
    from web.dashboard import stats

    return render(
        request,
        "home.html",
        {
            "stats": stats(),
            "agents": AgentIdentity.objects.prefetch_related("workflows"),
            "workflows": Workflow.objects.filter(archived_at__isnull=True).prefetch_related(
                "grants__data_object", "tiers__action_type"
            ),
        },
    )


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    """OIDC sign-in, and a password form only when WARDEN_DEV_LOGIN=1 (clearly marked)."""
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"), settings.LOGIN_REDIRECT_URL)
    form = AuthenticationForm(request, data=request.POST or None)
    if request.method == "POST":
        if not settings.WARDEN_DEV_LOGIN:
            return HttpResponse("Password login is disabled.", status=403)
        if form.is_valid():
            user = form.get_user()
            auth.login(request, user)  # cycles the session key
            import time

            amr = ["pwd", "mfa"] if request.POST.get("dev_mfa") else ["pwd"]  # dev only: no real second factor
            request.session[SESSION_AUTH_CONTEXT] = {
                "method": "dev-password",
                "amr": amr,
                "acr": "",
                "auth_time": int(time.time()),
            }
            audit.record("auth.login", user, outcome="succeeded", details={"method": "dev-password"})
            return HttpResponseRedirect(next_url)
    return render(
        request,
        "registration/login.html",
        {
            "form": form,
            "next": next_url,
            "dev_login": settings.WARDEN_DEV_LOGIN,
            "oidc_enabled": bool(settings.OIDC_RP_CLIENT_ID and settings.OIDC_OP_AUTHORIZATION_ENDPOINT),
            "expired": "expired" in request.GET,
            "failed": "failed" in request.GET,
            "stepup": "stepup" in request.GET,
        },
        status=200 if request.method == "GET" or form.is_valid() else 400,
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """End the Django session, then the IdP session where the provider has an end-session endpoint."""
    target = logout_url(request) if request.session.get("oidc_id_token") else settings.LOGOUT_REDIRECT_URL
    if request.user.is_authenticated:
        audit.record("auth.logout", request.user, outcome="succeeded")
    auth.logout(request)
    return redirect(target)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404s under /api/ are problem details too; elsewhere Django's page."""
    if request.path.startswith("/api/"):
        import json

        body = {
            "type": "urn:warden:problem:not-found",
            "title": "Not Found",
            "status": 404,
            "detail": "no such resource, or it is not yours",
        }
        return HttpResponse(json.dumps(body), status=404, content_type="application/problem+json")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        import json

        body = {
            "type": "urn:warden:problem:server-error",
            "title": "Internal Server Error",
            "status": 500,
            "detail": "Warden failed to handle this request; the error is logged",
        }
        return HttpResponse(json.dumps(body), status=500, content_type="application/problem+json")
    from django.views.defaults import server_error as default

    return default(request)
