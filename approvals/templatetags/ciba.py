"""The "approve on my device" block of the request page (approvals/ciba.py), kept apart from
the rest of the page's template."""

from __future__ import annotations

from typing import Any

from django import template

from agents.models import ActionRequest

register = template.Library()


@register.inclusion_tag("approvals/_ciba.html", takes_context=True)
def ciba_panel(context: dict[str, Any], ar: ActionRequest) -> dict[str, Any]:
    from approvals.ciba_views import panel_context

    return panel_context(context["request"], ar)
