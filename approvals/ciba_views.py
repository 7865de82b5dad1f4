"""The reviewer's side of approval on their own device (approvals/ciba.py). Thin, as views.py."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from agents.models import ActionRequest
from approvals import ciba, policies
from approvals.models import CibaRequest
from approvals.views import _get_action_request_for_user


def panel_context(request: HttpRequest, ar: ActionRequest) -> dict[str, Any]:
    """What the block shows. Whether it offers the button is a courtesy: the service decides."""
    user: Any = request.user
    latest = ciba.latest_for(ar, user)
    open_for_me = (
        ar.status == ActionRequest.Status.AWAITING_APPROVAL
        and policies.can_decide(user, ar)
        and not ar.decisions.filter(reviewer=user).exists()
    )
    pending = latest is not None and latest.status == CibaRequest.Status.PENDING
    return {
        "ar": ar,
        "enabled": settings.WARDEN_CIBA_ENABLED,
        "latest": latest,
        "pending": pending,
        "can_start": settings.WARDEN_CIBA_ENABLED and open_for_me and not pending,
        "binding_message": ciba.binding_message(ar.action, ar.params_hash),
    }


@login_required
@require_POST
def start(request: HttpRequest, pk: Any) -> HttpResponse:
    ar = _get_action_request_for_user(request, pk)
    try:
        cr = ciba.ciba_request_start(
            action_request=ar, reviewer=request.user, params_hash=request.POST.get("params_hash", "")
        )
        messages.success(request, f"Check your device: approve only the request that shows {cr.binding_message}.")
    except ciba.Refused as exc:
        messages.error(request, str(exc))
    return redirect("approvals:detail", pk=ar.pk)


@login_required
@require_GET
def panel(request: HttpRequest, pk: Any) -> HttpResponse:
    """The block alone, polled by htmx while the device has not answered; once it has, the
    whole page reloads to show the decision."""
    ar = _get_action_request_for_user(request, pk)
    context = panel_context(request, ar)
    response = render(request, "approvals/_ciba.html", context)
    if request.GET.get("waiting") and not context["pending"]:
        response["HX-Refresh"] = "true"
    return response
