"""The admins' and compliance staff's pages: access reviews, workflow versions and
recertification campaigns (provisioning is in provisioning_views.py). Views stay thin: each
change is one call into governance.services, through approvals.services' names."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals import services
from approvals.views import PAGE_SIZE, _require, _status_page
from governance.models import Workflow

# --- access reviews and workflow versions (compliance and admins) -----------------------------


def _require_governance_reader(request: HttpRequest) -> None:
    from governance.roles import Capability, can

    _require(can(request.user, Capability.READ_GOVERNANCE))


@login_required
@require_GET
def access_reviews(request: HttpRequest) -> HttpResponse:
    from governance.models import AccessReview

    _require_governance_reader(request)
    status, page = _status_page(
        request,
        AccessReview.objects.select_related("agent", "workflow").order_by("due_by"),
        AccessReview.Status.values,
        "open",
    )
    return render(
        request,
        "console/access_reviews.html",
        {"page": page, "status": status, "now": timezone.now(), "statuses": AccessReview.Status.values},
    )


def _revocation_unconfirmed(request: HttpRequest, what: str) -> bool:
    """A revocation ends the agent's sessions at once: it needs a reason and a ticked
    confirmation, like deprovisioning. True (with the message set) when either is missing."""
    if request.POST.get("note", "").strip() and request.POST.get("confirm"):
        return False
    messages.error(request, f"To revoke {what}, give a reason and tick the confirmation.")
    return True


@login_required
@require_POST
def access_review_decide(request: HttpRequest, pk: int, decision: str) -> HttpResponse:
    from governance.models import AccessReview

    _require_governance_reader(request)
    review = get_object_or_404(AccessReview, pk=pk)
    if decision == "revoke" and _revocation_unconfirmed(request, f"{review.workflow.name} from {review.agent.name}"):
        return redirect("console:access_reviews")
    try:
        services.access_review_decide(
            review=review, actor=request.user, decision=decision, note=request.POST.get("note", "")
        )
        messages.success(request, f"Review of {review.agent.name} on {review.workflow.name}: {decision}ed.")
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
    return redirect("console:access_reviews")


@login_required
@require_GET
def workflow_versions(request: HttpRequest, name: str) -> HttpResponse:
    from governance.versions import diff

    _require_governance_reader(request)
    workflow = get_object_or_404(Workflow, name=name)
    versions = list(workflow.versions.order_by("-version"))
    changes = [(newer, older, diff(older.spec, newer.spec)) for newer, older in zip(versions, versions[1:])]
    return render(
        request,
        "console/workflow_versions.html",
        {"workflow": workflow, "changes": changes, "first": versions[-1] if versions else None},
    )


# --- recertification campaigns (compliance) ----------------------------------------------------


def _require_compliance(request: HttpRequest) -> None:
    from governance.roles import Capability, can

    _require(can(request.user, Capability.RECERTIFY))


def _progress(campaign: Any) -> dict[str, int]:
    counts = {status: 0 for status in ("pending", "certified", "revoked", "overdue")}
    for status in campaign.items.values_list("status", flat=True):
        counts[status] += 1
    total = sum(counts.values())
    decided = total - counts["pending"]
    return {**counts, "total": total, "decided": decided, "percent": decided * 100 // total if total else 100}


@login_required
@require_http_methods(["GET", "POST"])
def campaigns(request: HttpRequest) -> HttpResponse:
    from governance.models import Campaign

    _require_compliance(request)
    form = {k: request.POST.get(k, "") for k in ("name", "scope", "scope_value", "deadline", "overdue_policy")}
    if request.method == "POST":
        try:
            _check_lengths(form, Campaign, ("name", "scope_value"))
            deadline = _parse_deadline(form["deadline"])
            campaign = services.campaign_create(
                name=form["name"],
                scope=form["scope"],
                scope_value=form["scope_value"],
                deadline=deadline,
                overdue_policy=form["overdue_policy"],
                actor=request.user,
            )
            messages.success(request, f"Campaign {campaign.name} opened for {campaign.items.count()} agents.")
            return redirect("console:campaign", pk=campaign.pk)
        except services.DecisionRefused as exc:
            messages.error(request, str(exc))
    items = [(c, _progress(c)) for c in Campaign.objects.all()[:PAGE_SIZE]]
    return render(
        request,
        "console/campaigns.html",
        {
            "campaigns": items,
            "form": form,
            "scopes": Campaign.Scope.choices,
            "policies": Campaign.OverduePolicy.choices,
        },
        status=400 if request.method == "POST" else 200,
    )


def _check_lengths(form: dict[str, str], model: Any, names: tuple[str, ...]) -> None:
    """Text longer than its column is refused here, before any write (SQLite would store it,
    PostgreSQL would fail the request)."""
    for name in names:
        limit = model._meta.get_field(name).max_length
        if len(form.get(name) or "") > limit:
            raise services.DecisionRefused(f"the {name.replace('_', ' ')} is at most {limit} characters")


def _parse_deadline(value: str) -> Any:
    from datetime import datetime

    from django.utils.dateparse import parse_date, parse_datetime

    try:
        parsed = parse_datetime(value) or (lambda d: datetime(d.year, d.month, d.day, 23, 59) if d else None)(
            parse_date(value)
        )
    except ValueError:
        parsed = None
    if parsed is None:
        raise services.DecisionRefused("the deadline must be a date (YYYY-MM-DD) or a date and time")
    aware = timezone.make_aware(parsed, UTC) if timezone.is_naive(parsed) else parsed
    try:
        in_utc = aware.astimezone(UTC)  # what the database stores; year 10000 does not exist
    except OverflowError:
        in_utc = None
    if in_utc is None or in_utc.year >= 9999:
        raise services.DecisionRefused("the deadline is too far in the future")
    return aware


@login_required
@require_GET
def campaign(request: HttpRequest, pk: int) -> HttpResponse:
    from governance.models import Campaign
    from governance.recertification import effective_access

    _require_compliance(request)
    obj = get_object_or_404(Campaign, pk=pk)
    items = [
        (item, item.evidence if item.status != "pending" else effective_access(item.agent))
        for item in obj.items.select_related("agent")
    ]
    return render(request, "console/campaign.html", {"campaign": obj, "items": items, "progress": _progress(obj)})


@login_required
@require_POST
def campaign_decide(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    from governance.models import CampaignItem

    _require_compliance(request)
    item = get_object_or_404(CampaignItem, pk=item_pk, campaign_id=pk)
    decision = request.POST.get("decision", "")
    if decision.startswith("revoke"):
        what = request.POST.get("workflow", "") if decision == "revoke_workflow" else ""
        if _revocation_unconfirmed(request, f"{what} for {item.agent.name}" if what else item.agent.name):
            return redirect("console:campaign", pk=pk)
    try:
        services.campaign_item_decide(
            item=item,
            actor=request.user,
            decision=decision,
            workflow=request.POST.get("workflow", ""),
            note=request.POST.get("note", ""),
        )
        messages.success(request, f"{item.agent.name}: decision recorded.")
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
    return redirect("console:campaign", pk=pk)


@login_required
@require_GET
def campaign_report(request: HttpRequest, pk: int, fmt: str = "html") -> HttpResponse:
    import io

    from audit.export import SafeCsvWriter
    from governance.models import Campaign

    _require_compliance(request)
    obj = get_object_or_404(Campaign, pk=pk)
    items = list(obj.items.select_related("agent"))
    if fmt == "csv":
        buffer = io.StringIO()
        writer = SafeCsvWriter(buffer)
        writer.writerow(
            ["campaign", "agent", "owner", "decision", "revoked", "decided_by", "decided_at", "note", "unused_grants"]
        )
        for item in items:
            unused = [
                f"{g['mode']}:{g['data_object']}"
                for w in item.evidence.get("workflows", [])
                for g in w["grants"]
                if g.get("flag")
            ]
            writer.writerow(
                [
                    obj.name,
                    item.agent.name,
                    item.agent.owner,
                    item.status,
                    "; ".join(item.revoked),
                    item.decided_by,
                    item.decided_at.isoformat() if item.decided_at else "",
                    item.note,
                    "; ".join(unused),
                ]
            )
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="recertification-{obj.pk}.csv"'
        return response
    return render(
        request,
        "console/campaign_report.html",
        {"campaign": obj, "items": items, "progress": _progress(obj), "now": timezone.now()},
    )
