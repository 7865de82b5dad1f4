"""The demo systems' own record pages: what a reviewer reaches through "open the record" on a
request page (the link comes from the system's `record_url` config, as it would for a real CRM).
Read-only, for reviewers, and without the fields no person in Warden sees (the SSN)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from demo_systems.models import Customer, Ticket
from governance.roles import Capability, can


def _require_reviewer(request: HttpRequest) -> None:
    if not can(request.user, Capability.REVIEW):
        raise PermissionDenied


@login_required
@require_GET
def customer(request: HttpRequest, pk: str) -> HttpResponse:
    _require_reviewer(request)
    obj = get_object_or_404(Customer, pk=pk)
    return render(
        request,
        "demo_systems/customer.html",
        {
            "customer": obj,
            "refunds": obj.refunds.order_by("-created_at")[:50],
            "notes": obj.notes.order_by("-created_at")[:50],
        },
    )


@login_required
@require_GET
def ticket(request: HttpRequest, pk: str) -> HttpResponse:
    _require_reviewer(request)
    obj = get_object_or_404(Ticket, pk=pk)
    return render(
        request, "demo_systems/ticket.html", {"ticket": obj, "comments": obj.comments.order_by("-created_at")[:50]}
    )
