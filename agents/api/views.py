"""The decision API for agent runtimes outside Warden's workers, and audit reads for people.

An external runtime starts a session with its agent key, then asks `/authorize` before every
tool call. `allow` means: execute it yourself and report the result. Tier 3 answers
`pending_approval`; poll (or long-poll) `/actions/{id}` until it is decided.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.validators import RegexValidator
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import AuthenticationFailed, NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

import audit
from agents import gateway, sessions
from agents.api import long_poll
from agents.api.auth import (
    AgentKeyAuthentication,
    AgentPrincipal,
    PausedSessionTokenAuthentication,
    PersonalTokenAuthentication,
    SessionTokenAuthentication,
)
from agents.api.oidc_tokens import OIDCAccessTokenAuthentication
from agents.api.throttles import AgentThrottle, PersonThrottle, SessionThrottle, WardenAPIView
from agents.models import ActionRequest, AgentSession
from agents.scopes import ScopeInvalid, session_scope
from audit.export import EXPORT_FIELDS
from audit.models import AuditEvent
from governance.models import Workflow
from governance.roles import Capability, can

LONG_POLL_MAX = 25


class IsAgent(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, AgentPrincipal)


def principal(request: Request) -> AgentPrincipal:
    """The agent calling (the authentication classes of agent endpoints guarantee one)."""
    user = request.user
    assert isinstance(user, AgentPrincipal), "an agent endpoint without agent authentication"
    return user


def _session(request: Request) -> AgentSession:
    session = principal(request).session
    assert session is not None, "a session endpoint without a session token"
    return session


class InSession(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.user, AgentPrincipal) and request.user.session is not None


class IsAuditor(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return not isinstance(user, AgentPrincipal) and can(user, Capability.AUDIT)


# --- serializers (the OpenAPI schema is generated from these) ---------------------------------


NO_NUL = r"^[^\x00]*$"


class Text(serializers.CharField):
    """A string, and only a string: no silent coercion of numbers or booleans, and no NUL
    characters (PostgreSQL text cannot hold them). The schema says so with a pattern."""

    def __init__(self, **kwargs: Any):
        # Kept as sent: trimming would turn " " into a blank the schema says is allowed.
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.validators.append(RegexValidator(NO_NUL, "must not contain NUL characters"))

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if "\x00" in data:
            raise serializers.ValidationError("must not contain NUL characters")
        return super().to_internal_value(data)


class SessionStart(serializers.Serializer):
    workflow = Text(max_length=128)
    input = Text(max_length=20000, required=False, allow_blank=True, default="")
    trigger = Text(max_length=200, required=False, default="api")
    initiated_by = Text(
        max_length=255,
        required=False,
        allow_blank=True,
        default="",
        help_text="who the runtime says started the session: stored as an unverified claim",
    )
    scope = serializers.JSONField(
        required=False,
        allow_null=True,
        default=dict,
        help_text="narrow the session: {actions: [...], constraints: {action: [{param, op, value}]}}",
    )
    trigger_data = serializers.DictField(
        child=Text(max_length=200),
        required=False,
        default=dict,
        help_text="values of the trigger (e.g. {ticket_id: T-2002}) that the workflow's scope template binds",
    )


class SessionStarted(serializers.Serializer):
    session_id = serializers.UUIDField()
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()


class AuthorizeRequest(serializers.Serializer):
    action = Text(max_length=128)
    params = serializers.JSONField(allow_null=True, help_text="the tool call's input (a JSON object)")
    tool_use_id = Text(max_length=128, required=False, allow_blank=True, default="")


class Decision(serializers.Serializer):
    decision = serializers.ChoiceField(["allow", "allow_notified", "pending_approval", "deny", "session_terminated"])
    tier = serializers.IntegerField(allow_null=True)
    action_request_id = serializers.UUIDField(allow_null=True)
    reason = serializers.CharField()


class ActionStatus(serializers.Serializer):
    id = serializers.UUIDField()
    action = serializers.CharField()
    tier = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()
    reason = serializers.CharField()
    decided_reason = serializers.CharField(allow_blank=True)
    result = serializers.JSONField(allow_null=True)
    error = serializers.CharField(allow_blank=True)


class ResultReport(serializers.Serializer):
    outcome = serializers.ChoiceField(["succeeded", "failed"])
    result = serializers.JSONField(required=False, allow_null=True, default=None)
    error = Text(max_length=2000, required=False, allow_blank=True, default="")


class SessionEnded(serializers.Serializer):
    session_id = serializers.UUIDField()
    status = serializers.CharField()
    termination_verified = serializers.BooleanField()


class EventOut(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = list(EXPORT_FIELDS)  # the same fields as the exports


def _status(ar: ActionRequest) -> dict[str, Any]:
    return {
        "id": ar.pk,
        "action": ar.action,
        "tier": ar.tier,
        "status": ar.status,
        "reason": ar.reason,
        "decided_reason": ar.decided_reason,
        "result": ar.result,
        "error": ar.error,
    }


# --- views --------------------------------------------------------------------------------


class SessionsView(WardenAPIView):
    authentication_classes = [AgentKeyAuthentication]
    permission_classes = [IsAgent]
    throttle_classes = [AgentThrottle]

    @extend_schema(request=SessionStart, responses={201: SessionStarted}, summary="Start a session with an agent key")
    def post(self, request: Request) -> Response:
        data = SessionStart(data=request.data)
        data.is_valid(raise_exception=True)
        agent = principal(request).agent
        scope = data.validated_data["scope"]
        workflow = Workflow.objects.filter(name=data.validated_data["workflow"]).first()
        if workflow is not None and (scope not in (None, {}) or workflow.scope_template):
            try:
                session_scope(
                    explicit=scope,
                    template=workflow.scope_template,
                    trigger_data=data.validated_data["trigger_data"],
                    input=data.validated_data["input"],
                    workflow_actions=set(workflow.tiers.values_list("action_type__name", flat=True)),
                )
            except ScopeInvalid as exc:
                field = "trigger_data" if "trigger" in str(exc) or "input" in str(exc) else "scope"
                raise ValidationError({field: [str(exc)]}) from None
        try:
            # The agent key proves only the agent: who it says started the session is a claim,
            # recorded as such and never the actor or the initiator that separation of duties reads.
            session, token = sessions.start(
                agent,
                data.validated_data["workflow"],
                data.validated_data["trigger"],
                f"agent:{agent.name}",
                data.validated_data["input"],
                run_state=AgentSession.RunState.API,
                claimed_initiator=data.validated_data["initiated_by"],
                scope=scope or None,
                trigger_data=data.validated_data["trigger_data"] or None,
            )
        except sessions.SessionRefused as exc:
            raise PermissionDenied(str(exc)) from None
        return Response(
            {"session_id": session.pk, "token": token, "expires_at": session.expires_at}, status=status.HTTP_201_CREATED
        )


class AuthorizeView(WardenAPIView):
    authentication_classes = [SessionTokenAuthentication]
    permission_classes = [InSession]
    throttle_classes = [AgentThrottle, SessionThrottle]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        """A call with a dead token is still a refused call: audited as the gateway audits it in-process."""
        try:
            super().initial(request, *args, **kwargs)
        except AuthenticationFailed:
            invalid = getattr(request._request, "warden_token_invalid", None)
            if invalid is not None:
                action = request.data.get("action", "") if isinstance(request.data, dict) else ""
                gateway.deny_without_session(action, invalid)
            raise

    @extend_schema(request=AuthorizeRequest, responses={200: Decision}, summary="Decide one tool call")
    def post(self, request: Request) -> Response:
        data = AuthorizeRequest(data=request.data)
        data.is_valid(raise_exception=True)
        result = gateway.authorize(
            request.auth,
            data.validated_data["action"],
            data.validated_data["params"],
            tool_use_id=data.validated_data["tool_use_id"],
            execute=False,
            verified_session=_session(request),
        )
        return Response(
            {
                "decision": result.decision,
                "tier": result.tier,
                "action_request_id": result.action_request_id,
                "reason": result.reason,
            }
        )


def _action_for(request: Request, pk: Any) -> ActionRequest:
    ar = ActionRequest.objects.filter(pk=pk).first()
    if ar is None or ar.session_id != _session(request).pk:
        if ar is not None:
            audit.record(
                "api.cross_session_refused",
                principal(request).agent,
                session=_session(request),
                outcome="denied",
                details={"action_request": str(pk)},
            )
        raise NotFound()
    return ar


class ActionView(WardenAPIView):
    """Session tokens stop working while the session waits for a reviewer, so status reads
    accept the paused session's token too."""

    authentication_classes = [PausedSessionTokenAuthentication]
    permission_classes = [InSession]
    throttle_classes = [AgentThrottle, SessionThrottle]

    @extend_schema(
        parameters=[
            OpenApiParameter("wait", int, description=f"long-poll up to this many seconds (max {LONG_POLL_MAX})")
        ],
        responses={200: ActionStatus},
        summary="The status of an action (long-poll with ?wait=)",
    )
    def get(self, request: Request, pk: Any) -> Response:
        ar = ActionRequest.objects.filter(pk=pk, session=_session(request)).first()
        if ar is None:
            raise NotFound()
        try:
            wait = min(max(int(request.query_params.get("wait", "0")), 0), LONG_POLL_MAX)
        except ValueError:
            raise ValidationError({"wait": "a whole number of seconds"}) from None
        # Wait only while a reviewer has not decided: `approved` is already the answer.
        if wait and ar.status == ActionRequest.Status.AWAITING_APPROVAL and request.META.get(long_poll.ON_LOOP):
            # Served by config/asgi.py: its event loop waits, and then asks again.
            return Response(_status(ar), headers={long_poll.HEADER: f"{ar.pk};{wait}"})
        deadline = time.monotonic() + wait
        if wait and ar.status == ActionRequest.Status.AWAITING_APPROVAL:
            while long_poll.awaits_reviewer(ar.pk) and time.monotonic() < deadline:
                time.sleep(0.25)  # long-poll: the client asked to wait for a change
            ar.refresh_from_db()
        return Response(_status(ar))


class ActionResultView(WardenAPIView):
    authentication_classes = [SessionTokenAuthentication]
    permission_classes = [InSession]
    throttle_classes = [AgentThrottle, SessionThrottle]

    @extend_schema(request=ResultReport, responses={200: ActionStatus}, summary="Report what an allowed action did")
    def post(self, request: Request, pk: Any) -> Response:
        data = ResultReport(data=request.data)
        data.is_valid(raise_exception=True)
        ar = _action_for(request, pk)
        try:
            ar = gateway.report_result(
                ar,
                outcome=data.validated_data["outcome"],
                result=data.validated_data["result"],
                error=data.validated_data["error"],
            )
        except gateway.ReportRefused as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(_status(ar))


class SessionEndView(WardenAPIView):
    authentication_classes = [SessionTokenAuthentication]
    permission_classes = [InSession]
    throttle_classes = [AgentThrottle]

    @extend_schema(request=None, responses={200: SessionEnded}, summary="End the session (verified termination)")
    def post(self, request: Request, pk: Any) -> Response:
        if str(_session(request).pk) != str(pk):
            raise NotFound()
        ended = sessions.terminate(
            _session(request),
            reason="ended by the runtime",
            actor=f"agent:{principal(request).agent.name}",
            status=AgentSession.Status.COMPLETED,
        )
        return Response(
            {"session_id": ended.pk, "status": ended.status, "termination_verified": ended.termination_verified}
        )


class AuditEventsView(WardenAPIView):
    authentication_classes = [PersonalTokenAuthentication, OIDCAccessTokenAuthentication]
    permission_classes = [IsAuditor]
    throttle_classes = [PersonThrottle]

    @extend_schema(
        parameters=[
            OpenApiParameter(name, {"type": "string", "pattern": NO_NUL})
            for name in ("kind", "agent", "workflow", "session", "system", "actor", "outcome", "action", "q")
        ]
        + [
            OpenApiParameter("since", OpenApiTypes.DATETIME),
            OpenApiParameter("until", OpenApiTypes.DATETIME),
            OpenApiParameter("before", int, description="keyset pagination: events with seq below this"),
            OpenApiParameter("limit", int, description="at most 500"),
        ],
        responses={
            200: inline_serializer(
                "EventPage", {"events": EventOut(many=True), "next_before": serializers.IntegerField(allow_null=True)}
            )
        },
        summary="Search the audit trail (compliance and security)",
    )
    def get(self, request: Request) -> Response:
        from audit.search import filtered

        blank = [
            k
            for k in ("since", "until", "before", "limit")
            if k in request.query_params and not request.query_params[k].strip()
        ]
        if blank:
            raise ValidationError({k: "must not be empty" for k in blank})
        events, _, errors = filtered(request.query_params)
        if errors:
            raise ValidationError({"filters": errors})
        try:
            limit = min(max(int(request.query_params.get("limit", "100")), 1), 500)
            before = request.query_params.get("before")
            if before:
                events = events.filter(seq__lt=int(before))
        except ValueError:
            raise ValidationError({"detail": "limit and before are whole numbers"}) from None
        page: QuerySet[AuditEvent] = events.order_by("-seq")[: limit + 1]
        rows = list(page)
        return Response(
            {
                "events": EventOut(rows[:limit], many=True).data,
                "next_before": rows[limit - 1].seq if len(rows) > limit else None,
            }
        )
