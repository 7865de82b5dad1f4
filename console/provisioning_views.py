"""The admins' provisioning UI. Reading needs the admin role; every change also needs a
recent MFA sign-in (step-up), or the browser is sent to the IdP with prompt=login."""

from __future__ import annotations

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
from approvals.views import stepup_redirect
from console import provisioning, workflow_form
from governance import services
from governance.models import ActionType, AgentIdentity, ContextRule, DataObject, ServiceCredential, Workflow
from governance.oidc import safe_next, stepup_satisfied
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
            # The form is kept and sent again after the sign-in (approvals.stepup).
            return stepup_redirect(
                request, safe_next(request, request.POST.get("back"), reverse("console:provisioning"))
            )
        try:
            return view(request, *args, **kwargs)
        except DecisionRefused as exc:
            messages.error(request, str(exc))
            return redirect(safe_next(request, request.POST.get("back"), reverse("console:provisioning")))

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
    return _workflow_page(request, workflow, workflow_form.from_workflow(workflow))


def _workflow_page(
    request: HttpRequest, workflow: Workflow, form: workflow_form.WorkflowForm, status: int = 200
) -> HttpResponse:
    from governance.models import ValueList

    grid = [
        (
            obj,
            (obj.name, "read") in form.grants,
            (obj.name, "write") in form.grants,
            form.field_errors.get(f"grant:{obj.name}", []),
        )
        for obj in DataObject.objects.all()
    ]
    return render(
        request,
        "console/workflow_edit.html",
        {
            "workflow": workflow,
            "form": form,
            "grid": grid,
            "actions": ActionType.objects.values_list("name", flat=True),
            "lists": list(ValueList.objects.values_list("name", flat=True)),
            "operators": workflow_form.OPERATOR_WORDS.items(),
        },
        status=status,
    )


@stepped_up
def _workflow_save(request: HttpRequest, workflow: Workflow) -> HttpResponse:
    """On any problem the page comes back with everything as typed, each error at its row."""
    form = workflow_form.from_post(request.POST)
    access, tiers, seconds, version = workflow_form.to_update(form)
    if not form.has_errors:
        try:
            updated = provisioning.workflow_update(
                actor=request.user,
                session=request.session,
                name=workflow.name,
                expected_version=version,
                access=access,
                tiers=tiers,
                max_session_seconds=seconds,
            )
        except DecisionRefused as exc:
            names = sorted(Workflow.objects.values_list("name", flat=True))
            workflow_form.place_errors(form, str(exc), names.index(workflow.name))
        else:
            messages.success(request, f"{workflow.name} saved as v{updated.version}.")
            return redirect("console:workflow_edit", name=workflow.name)
    return _workflow_page(request, workflow, form.with_blank_rows(), status=400)


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
            # As if pasted: a form kept through a step-up sign-in carries the text, not the file.
            request.POST = request.POST.copy()  # type: ignore[misc]
            request.POST["text"] = context["text"]
        return _policy_post(request, context)
    return render(request, "console/policy.html", context)


@stepped_up
def _policy_post(request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
    apply = request.POST.get("apply") == "1"
    try:
        changes = provisioning.policy_upload(
            actor=request.user,
            session=request.session,
            text=context["text"],
            apply=apply,
            # An apply without the preview's fingerprint matches no plan: it is refused.
            expect_plan=request.POST.get("plan", "") if apply else None,
        )
    except DecisionRefused as exc:
        context["errors"] = str(exc).split("; ")
        if apply:
            try:  # show the plan as it is now, to review and apply
                changes = provisioning.policy_upload(
                    actor=request.user, session=request.session, text=context["text"], apply=False
                )
                context.update(changes=[str(c) for c in changes], plan=services.plan_digest(changes))
            except DecisionRefused:
                pass
        return render(request, "console/policy.html", context, status=400)
    context.update(changes=[str(c) for c in changes], applied=apply, plan=services.plan_digest(changes))
    return render(request, "console/policy.html", context)
