"""The admins' provisioning UI. Reading needs the admin role; every change also needs a
recent MFA sign-in (step-up), or the browser is sent to the IdP with prompt=login."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals.services import DecisionRefused
from console import provisioning
from governance.models import AgentIdentity, ContextRule, DataObject, ServiceCredential, Workflow
from governance.oidc import stepup_satisfied, stepup_url
from governance.roles import Capability, can


def admin_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can(request.user, Capability.PROVISION):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def stepped_up(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For changes: without a recent MFA sign-in, go and get one, then come back to the page."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not stepup_satisfied(request.session):
            back = request.POST.get("back") or reverse("console:provisioning")
            messages.info(request, "This change needs a recent sign-in with a second factor.")
            return redirect(stepup_url(request, back))
        try:
            return view(request, *args, **kwargs)
        except DecisionRefused as exc:
            messages.error(request, str(exc))
            return redirect(request.POST.get("back") or reverse("console:provisioning"))

    return wrapped


def _overview(request: HttpRequest, form: dict[str, Any] | None = None, status: int = 200) -> HttpResponse:
    return render(
        request,
        "console/provisioning.html",
        {
            "agents": AgentIdentity.objects.prefetch_related("workflows"),
            "workflows": Workflow.objects.filter(archived_at__isnull=True),
            "credentials": ServiceCredential.objects.select_related("system"),
            "rules": ContextRule.objects.all(),
            "stepped_up": stepup_satisfied(request.session),
            "statuses": AgentIdentity.Status.values,
            "form": form or {},
        },
        status=status,
    )


@admin_only
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    return _overview(request)


@admin_only
@require_POST
@stepped_up
def agent_create(request: HttpRequest) -> HttpResponse:
    form = {k: request.POST.get(k, "") for k in ("name", "owner", "description", "recertify_by")}
    form["workflows"] = request.POST.getlist("workflows")
    try:
        agent = provisioning.agent_create(
            actor=request.user,
            session=request.session,
            name=form["name"],
            owner=form["owner"],
            description=form["description"],
            recertify_by=provisioning.parse_date(form["recertify_by"]),
            workflows=form["workflows"],
        )
    except DecisionRefused as exc:
        messages.error(request, str(exc))
        return _overview(request, form, status=400)  # the admin's input stays in the form
    messages.success(request, f"Agent {agent.name} created.")
    return redirect("console:provisioning")


@admin_only
@require_POST
@stepped_up
def agent_status(request: HttpRequest, name: str, status: str) -> HttpResponse:
    agent = get_object_or_404(AgentIdentity, name=name)
    reason = request.POST.get("reason", "").strip()
    if status == AgentIdentity.Status.DEPROVISIONED and not (reason and request.POST.get("confirm")):
        # For good: the identity loses its workflows and never runs again. Say why, and mean it.
        messages.error(request, f"To deprovision {name}, give a reason and tick the confirmation.")
        return redirect("console:provisioning")
    provisioning.agent_set_status(
        actor=request.user, session=request.session, agent=agent, status=status, reason=reason
    )
    messages.success(request, f"Agent {name} is now {status}.")
    return redirect("console:provisioning")


@admin_only
@require_http_methods(["GET", "POST"])
def workflow_edit(request: HttpRequest, name: str) -> HttpResponse:
    workflow = get_object_or_404(Workflow, name=name)
    if request.method == "POST":
        return _workflow_save(request, workflow)
    grants = set(workflow.grants.values_list("data_object__name", "mode"))
    grid = [(obj, (obj.name, "read") in grants, (obj.name, "write") in grants) for obj in DataObject.objects.all()]
    tiers = [
        {"action": t.action_type.name, "tier": t.tier, "quorum": t.quorum, "conditions": json.dumps(t.conditions)}
        for t in workflow.tiers.select_related("action_type")
    ]
    return render(request, "console/workflow_edit.html", {"workflow": workflow, "grid": grid, "tiers": tiers})


@stepped_up
def _workflow_save(request: HttpRequest, workflow: Workflow) -> HttpResponse:
    # Grid checkboxes are named grant:<mode>:<data object>; anything else is not a grant.
    access = [
        {"data_object": parts[2], "mode": parts[1]}
        for parts in (key.split(":", 2) for key in request.POST if key.startswith("grant:"))
        if len(parts) == 3 and parts[1] and parts[2]
    ]
    tiers = []
    for action, tier, quorum, conditions in zip(
        request.POST.getlist("tier_action"),
        request.POST.getlist("tier_tier"),
        request.POST.getlist("tier_quorum"),
        request.POST.getlist("tier_conditions"),
    ):
        if not action:
            continue
        try:
            tiers.append(
                {
                    "action": action,
                    "tier": int(tier),
                    "quorum": int(quorum or 1),
                    "conditions": json.loads(conditions or "[]"),
                }
            )
        except (ValueError, TypeError, RecursionError):
            raise DecisionRefused(
                f"{action}: the tier and quorum are numbers, and the conditions a JSON list"
            ) from None
    try:
        version, seconds = int(request.POST.get("version", "0")), int(request.POST.get("max_session_seconds", "0"))
    except ValueError:
        raise DecisionRefused("the version and the maximum duration are whole numbers") from None
    updated = provisioning.workflow_update(
        actor=request.user,
        session=request.session,
        name=workflow.name,
        expected_version=version,
        access=access,
        tiers=tiers,
        max_session_seconds=seconds,
    )
    messages.success(request, f"{workflow.name} saved as v{updated.version}.")
    return redirect("console:workflow_edit", name=workflow.name)


@admin_only
@require_POST
@stepped_up
def context_rule(request: HttpRequest, data_type: str) -> HttpResponse:
    provisioning.context_rule_update(
        actor=request.user,
        session=request.session,
        data_type=data_type,
        handling=request.POST.get("handling", ""),
        clear=request.POST.get("clear", ""),
        persist=request.POST.get("persist") == "on",
    )
    messages.success(request, f"Context rule {data_type} saved.")
    return redirect("console:provisioning")


@admin_only
@require_POST
@stepped_up
def credential(request: HttpRequest, name: str, op: str) -> HttpResponse:
    obj = get_object_or_404(ServiceCredential, name=name)
    if op == "rotate":
        provisioning.credential_rotate_now(actor=request.user, session=request.session, credential=obj)
        messages.success(request, f"{name} rotated.")
    else:
        provisioning.credential_set(
            actor=request.user, session=request.session, credential=obj, secret=request.POST.get("secret", "")
        )
        messages.success(request, f"A new secret for {name} is stored.")
    return redirect("console:provisioning")


@admin_only
@require_http_methods(["GET", "POST"])
def policy(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"text": request.POST.get("text", "")}
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is not None:
            context["text"] = upload.read().decode("utf-8", "replace")
        return _policy_post(request, context)
    return render(request, "console/policy.html", context)


@stepped_up
def _policy_post(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    apply = request.POST.get("apply") == "1"
    try:
        changes = provisioning.policy_upload(
            actor=request.user, session=request.session, text=context["text"], apply=apply
        )
    except DecisionRefused as exc:
        context["errors"] = str(exc).split("; ")
        return render(request, "console/policy.html", context, status=400)
    context.update(changes=[str(c) for c in changes], applied=apply)
    return render(request, "console/policy.html", context)
