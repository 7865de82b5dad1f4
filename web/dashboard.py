"""The numbers on the home page: a few counting queries, nothing cached."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone

from agents.models import ActionRequest, AgentSession, HumanHandoff, SecurityAlert
from governance.models import AccessReview, AgentIdentity, CampaignItem

TIER_COLOURS = {1: "#2f7a4b", 2: "#2d5f96", 3: "#8a5a00", 4: "#a4231b"}


def stats() -> dict[str, Any]:
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    by_status = dict(AgentIdentity.objects.values_list("status").annotate(n=Count("id")))
    by_tier = dict(
        ActionRequest.objects.filter(created_at__gte=today, tier__isnull=False)
        .values_list("tier")
        .annotate(n=Count("id"))
    )
    denied = ActionRequest.objects.filter(created_at__gte=today, tier__isnull=True).count()
    soon = timezone.now() + timedelta(days=30)
    bars = [{"label": f"Tier {t}", "count": by_tier.get(t, 0), "colour": TIER_COLOURS[t]} for t in (1, 2, 3, 4)]
    bars.append({"label": "Refused", "count": denied, "colour": "#566072"})
    top = max([b["count"] for b in bars] + [1])
    for i, bar in enumerate(bars):
        bar["width"] = round(300 * bar["count"] / top)
        bar["y"] = 10 + i * 28
    return {
        "agents_by_status": [(s, by_status.get(s, 0)) for s in AgentIdentity.Status.values],
        "sessions_running": AgentSession.objects.filter(status__in=AgentSession.LIVE).count(),
        "bars": bars,
        "chart_height": 10 + len(bars) * 28,
        "pending_approvals": ActionRequest.objects.filter(status=ActionRequest.Status.AWAITING_APPROVAL).count(),
        "open_handoffs": HumanHandoff.objects.exclude(status=HumanHandoff.Status.RESOLVED).count(),
        "open_alerts": SecurityAlert.objects.filter(status=SecurityAlert.Status.OPEN).count(),
        "recertification_due": AgentIdentity.objects.filter(recertify_by__lte=soon.date())
        .exclude(status=AgentIdentity.Status.DEPROVISIONED)
        .count()
        + CampaignItem.objects.filter(status=CampaignItem.Status.PENDING).count(),
        "open_reviews": AccessReview.objects.filter(status=AccessReview.Status.OPEN).count(),
    }
