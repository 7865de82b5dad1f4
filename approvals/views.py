"""The reviewer UI. Thin: fetch through a `_get_*_for_user` helper, call one service, render."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from agents.models import ActionRequest, AgentSession, HumanHandoff, SecurityAlert
from approvals import policies, services
from approvals.models import ApprovalDecision
from governance.actors import Actor
from governance.models import AgentIdentity, System, Workflow
from governance.oidc import safe_next, stepup_satisfied, stepup_url

PAGE_SIZE = 50


def _status_page(request: HttpRequest, items: Any, statuses: list[str], default: str = "") -> tuple[str, Any]:
    """The list filtered by ?status= (when it names a status) and paged at 50."""
    status = request.GET.get("status", default)
    if status in statuses:
        items = items.filter(status=status)
    return status, Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def _queue_items(request: HttpRequest, *, decided: bool = False) -> dict[str, Any]:
    """The waiting requests, or (decided=True) the history of decided ones, with the same filters."""
    _require(policies.can_review(request.user))
    visible = policies.actions_visible_to(request.user).select_related("session__agent", "session__workflow")
    if decided:
        items = visible.exclude(status=ActionRequest.Status.AWAITING_APPROVAL)
        outcome = request.GET.get("outcome", "")
        if outcome in ActionRequest.Status.values:
            items = items.filter(status=outcome)
    else:
        items = visible.filter(status=ActionRequest.Status.AWAITING_APPROVAL)
    filters = {key: request.GET.get(key, "") for key in ("workflow", "agent", "system")}
    if filters["workflow"]:
        items = items.filter(session__workflow__name=filters["workflow"])
    if filters["agent"]:
        items = items.filter(session__agent__name=filters["agent"])
    if filters["system"]:
        items = items.filter(system=filters["system"])
    newest = decided or request.GET.get("sort") == "newest"
    items = items.order_by("-created_at" if newest else "created_at")
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    return {"page": page, "filters": filters, "newest": newest, "now": timezone.now(), "query": request.GET.urlencode()}


@login_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    context = _queue_items(request)
    context.update(
        {
            "workflows": Workflow.objects.values_list("name", flat=True),
            "agents": AgentIdentity.objects.values_list("name", flat=True),
            "systems": System.objects.values_list("name", flat=True),
        }
    )
    return render(request, "approvals/queue.html", context)


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    """Decided tier 3 requests, newest first: what was approved, rejected, expired or cancelled."""
    context = _queue_items(request, decided=True)
    context.update(
        {
            "workflows": Workflow.objects.values_list("name", flat=True),
            "agents": AgentIdentity.objects.values_list("name", flat=True),
            "systems": System.objects.values_list("name", flat=True),
            "outcomes": [s for s in ActionRequest.Status.values if s != ActionRequest.Status.AWAITING_APPROVAL],
            "outcome": request.GET.get("outcome", ""),
        }
    )
    return render(request, "approvals/history.html", context)


@login_required
@require_GET
def queue_rows(request: HttpRequest) -> HttpResponse:
    """The queue's rows alone, polled by htmx so new items appear without a reload."""
    return render(request, "approvals/_queue_rows.html", _queue_items(request))


def _get_action_request_for_user(request: HttpRequest, pk: Any) -> ActionRequest:
    _require(policies.can_review(request.user))
    return get_object_or_404(
        policies.actions_visible_to(request.user).select_related("session__agent", "session__workflow"), pk=pk
    )


def _agent_claim(session: AgentSession, tool_use_id: str) -> str:
    """What the model said alongside the tool call: shown, but labelled as its claim."""
    for message in session.conversation:
        content = message.get("content")
        if (
            message.get("role") == "assistant"
            and isinstance(content, list)
            and any(b.get("id") == tool_use_id for b in content if isinstance(b, dict))
        ):
            return "\n".join(b.get("text", "") for b in content if b.get("type") == "text").strip()
    return ""


def _claimed_initiator(session: AgentSession) -> str:
    """Who the agent runtime said started the session (API sessions): unverified, shown as such."""
    from audit.models import AuditEvent

    details = (
        AuditEvent.objects.filter(kind="session.started", session=session.audit_label)
        .values_list("details", flat=True)
        .first()
    )
    return str((details or {}).get("claimed_initiator") or "")


def _next_request(request: HttpRequest, ar: ActionRequest) -> ActionRequest | None:
    """The oldest other waiting request this reviewer can still decide: where "next" goes."""
    waiting = (
        policies.actions_visible_to(request.user)
        .filter(status=ActionRequest.Status.AWAITING_APPROVAL)
        .exclude(pk=ar.pk)
        .exclude(decisions__reviewer=request.user)
        .select_related("session")
        .order_by("created_at")
    )
    return next((other for other in waiting[:50] if policies.can_decide(request.user, other)), None)


@login_required
@require_GET
def detail(request: HttpRequest, pk: Any) -> HttpResponse:
    from agents.connectors.preview import preview_for

    ar = _get_action_request_for_user(request, pk)
    session = ar.session
    waiting = ar.status == ActionRequest.Status.AWAITING_APPROVAL
    return render(
        request,
        "approvals/detail.html",
        {
            "ar": ar,
            "session": session,
            "steps": [
                {
                    "ar": step,
                    "result": json.dumps(step.result, ensure_ascii=False, sort_keys=True)[:300]
                    if step.result is not None
                    else "",
                }
                for step in session.action_requests.order_by("created_at")
            ],
            # JSON text for every value: a value can never fake another line or field.
            "params": [
                (str(key), json.dumps(value, ensure_ascii=False, sort_keys=True))
                for key, value in (ar.params or {}).items()
            ],
            "decisions": ar.decisions.select_related("reviewer"),
            "approvals": ar.decisions.filter(decision=ApprovalDecision.Decision.APPROVE).count(),
            "can_decide": policies.can_decide(request.user, ar)
            and ar.status == ActionRequest.Status.AWAITING_APPROVAL
            and not ar.decisions.filter(reviewer=request.user).exists(),
            "my_decision": ar.decisions.filter(reviewer=request.user).first(),
            "session_scope": json.dumps(session.scope, ensure_ascii=False, sort_keys=True) if session.scope else "",
            "is_initiator": policies.is_initiator(request.user, session),
            "agent_claim": _agent_claim(session, ar.tool_use_id),
            "claimed_initiator": _claimed_initiator(session),
            "now": timezone.now(),
            # Only while the request waits: afterwards the record shows the change itself.
            "preview": preview_for(ar) if waiting else None,
            "next_request": _next_request(request, ar),
        },
    )


@login_required
@require_POST
def decide(request: HttpRequest, pk: Any, decision: str) -> HttpResponse:
    ar = _get_action_request_for_user(request, pk)
    if policies.is_initiator(request.user, ar.session):
        try:  # refused and audited by the service
            services.action_request_decide(
                action_request=ar,
                reviewer=request.user,
                decision=decision,
                comment="",
                params_hash="",
                auth_session=request.session,
            )
        except services.DecisionRefused as exc:
            raise PermissionDenied(str(exc)) from None
    try:
        result = services.action_request_decide(
            action_request=ar,
            reviewer=request.user,
            decision=decision,
            comment=request.POST.get("comment", ""),
            params_hash=request.POST.get("params_hash", ""),
            auth_session=request.session,
        )
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
        return redirect("approvals:detail", pk=ar.pk)
    if result.status == ActionRequest.Status.AWAITING_APPROVAL:
        approvals = result.decisions.filter(decision=ApprovalDecision.Decision.APPROVE).count()
        missing = result.quorum - approvals
        messages.success(
            request,
            f"Your approval is recorded ({approvals} of {result.quorum}): {ar.action} runs once "
            f"{missing} more reviewer{'s' if missing != 1 else ''} approve{'s' if missing == 1 else ''}.",
        )
    else:
        messages.success(
            request,
            f"{'Approved' if decision == 'approve' else 'Rejected'}: {ar.action} is now {result.status.replace('_', ' ')}.",
        )
    return redirect("approvals:detail", pk=ar.pk)


# --- a form sent again after a step-up sign-in -------------------------------------------------


def stepup_redirect(request: HttpRequest, back: str, what: str = "This change") -> HttpResponse:
    """Off to a fresh MFA sign-in; the submitted form is kept and sent again on return."""
    from approvals import stepup

    replay_id = stepup.stash(request)
    if replay_id is None:
        messages.info(request, f"{what} needs a recent sign-in with a second factor. Then make it again.")
        return redirect(stepup_url(request, back))
    messages.info(request, f"{what} needs a recent sign-in with a second factor. After it, your form is sent again.")
    return redirect(stepup_url(request, reverse("approvals:replay", args=[replay_id])))


@login_required
@require_GET
def replay(request: HttpRequest, replay_id: str) -> HttpResponse:
    """Post the kept form again, once, with a fresh CSRF token (a static script submits it)."""
    from approvals import stepup

    saved = stepup.take(request, replay_id)
    if saved is None:
        messages.error(request, "There is no form to send again: it was sent already, or it expired.")
        return redirect("home")
    return render(request, "approvals/replay.html", {"path": saved["path"], "items": saved["items"]})


# --- handoffs -------------------------------------------------------------------------------


def _get_handoff_for_user(request: HttpRequest, pk: int) -> HumanHandoff:
    _require(policies.can_handle_handoffs(request.user))
    return get_object_or_404(HumanHandoff.objects.select_related("session__agent", "session__workflow"), pk=pk)


@login_required
@require_GET
def handoffs(request: HttpRequest) -> HttpResponse:
    _require(policies.can_handle_handoffs(request.user))
    status, page = _status_page(
        request,
        HumanHandoff.objects.select_related("session__agent", "session__workflow").order_by("created_at"),
        HumanHandoff.Status.values,
        "open",
    )
    return render(
        request, "approvals/handoffs.html", {"page": page, "status": status, "statuses": HumanHandoff.Status.values}
    )


@login_required
@require_GET
def handoff_detail(request: HttpRequest, pk: int) -> HttpResponse:
    handoff = _get_handoff_for_user(request, pk)
    return render(request, "approvals/handoff_detail.html", {"handoff": handoff})


@login_required
@require_POST
def handoff_claim(request: HttpRequest, pk: int) -> HttpResponse:
    handoff = _get_handoff_for_user(request, pk)
    try:
        services.handoff_claim(handoff=handoff, responder=request.user)
        messages.success(request, "You have claimed this handoff.")
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
    return redirect("approvals:handoff", pk=pk)


@login_required
@require_POST
def handoff_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    handoff = _get_handoff_for_user(request, pk)
    try:
        services.handoff_resolve(handoff=handoff, responder=request.user, resolution=request.POST.get("resolution", ""))
        messages.success(request, "The handoff is resolved.")
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
    return redirect("approvals:handoff", pk=pk)


# --- security alerts ------------------------------------------------------------------------


def _alert_page(request: HttpRequest) -> tuple[str, Any]:
    return _status_page(
        request,
        SecurityAlert.objects.select_related("session", "agent").order_by("-created_at"),
        SecurityAlert.Status.values,
    )


@login_required
@require_GET
def alerts(request: HttpRequest) -> HttpResponse:
    _require(policies.can_see_alerts(request.user))
    status, page = _alert_page(request)
    context = {"page": page, "status": status, "statuses": SecurityAlert.Status.values}
    template = "approvals/_alert_rows.html" if request.GET.get("rows") else "approvals/alerts.html"
    return render(request, template, context)


@login_required
@require_GET
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require(policies.can_see_alerts(request.user))
    alert = get_object_or_404(SecurityAlert.objects.select_related("session__workflow", "agent"), pk=pk)
    return render(
        request,
        "approvals/alert_detail.html",
        {
            "alert": alert,
            "details": json.dumps(alert.details, indent=2, sort_keys=True, ensure_ascii=False),
            "stepped_up": stepup_satisfied(request.session),
        },
    )


@login_required
@require_POST
def alert_update(request: HttpRequest, pk: int, status: str) -> HttpResponse:
    _require(policies.can_see_alerts(request.user))
    alert = get_object_or_404(SecurityAlert, pk=pk)
    try:
        services.alert_update(alert=alert, actor=request.user, status=status, note=request.POST.get("note", ""))
        messages.success(request, f"Alert {status}.")
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
    return redirect(safe_next(request, request.POST.get("back"), reverse("approvals:alerts")))


@login_required
@require_POST
def alert_suspend_agent(request: HttpRequest, pk: int) -> HttpResponse:
    """The kill switch from an alert: a recent MFA sign-in and a reason, then the agent stops."""
    _require(policies.can_see_alerts(request.user))
    alert = get_object_or_404(SecurityAlert.objects.select_related("agent"), pk=pk)
    back = reverse("approvals:alert", args=[pk])
    if not stepup_satisfied(request.session):
        return stepup_redirect(request, back, "Suspending an agent")
    try:
        services.alert_suspend_agent(
            alert=alert, actor=Actor.from_session(request.user, request.session), reason=request.POST.get("reason", "")
        )
        messages.success(request, f"Agent {alert.agent.name if alert.agent else ''} suspended; its sessions ended.")
    except services.DecisionRefused as exc:
        messages.error(request, str(exc))
    return redirect(back)
