from django.contrib import admin

from agents.models import ActionRequest, AgentSession, HumanHandoff, SecurityAlert
from governance.admin import ReadOnlyAdmin


@admin.register(AgentSession)
class AgentSessionAdmin(ReadOnlyAdmin):
    list_display = ("id", "agent", "workflow", "status", "run_state", "created_at", "termination_verified")
    list_filter = ("status", "workflow")
    exclude = ("conversation", "clear_after_step", "pending_tool_uses")


@admin.register(ActionRequest)
class ActionRequestAdmin(ReadOnlyAdmin):
    list_display = ("action", "session", "tier", "status", "created_at")
    list_filter = ("status", "tier")
    exclude = ("sealed_params",)


@admin.register(HumanHandoff)
class HumanHandoffAdmin(ReadOnlyAdmin):
    list_display = ("session", "trigger", "status", "created_at")


@admin.register(SecurityAlert)
class SecurityAlertAdmin(ReadOnlyAdmin):
    list_display = ("kind", "summary", "status", "created_at")
