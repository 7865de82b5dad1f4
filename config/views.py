from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from governance.models import AgentIdentity, Workflow


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {
        "agents": AgentIdentity.objects.prefetch_related("workflows"),
        "workflows": Workflow.objects.prefetch_related("grants__data_object", "tiers__action_type"),
    })  # fmt: skip
