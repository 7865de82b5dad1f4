"""Django admin shows the governance registry read-only.

Every change to governance state goes through governance/services.py, which checks the
actor's step-up and separation of duties and writes the audit event in the same transaction.
An editable admin would be a second write path that skips all of that (admins are Django
superusers), so every ModelAdmin here refuses add, change and delete, and roles (Django
groups) are granted only through the identity provider's groups claim.
"""

from __future__ import annotations

from typing import Any

from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.http import HttpRequest

from governance import models


class ReadOnlyAdmin(admin.ModelAdmin):
    """List and inspect; never write. Changes go through the services (UI, policy files, CLI)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.System)
class SystemAdmin(ReadOnlyAdmin):
    list_display = ("name", "display_name", "connector")
    search_fields = ("name", "display_name")


@admin.register(models.DataObject)
class DataObjectAdmin(ReadOnlyAdmin):
    list_display = ("name", "system", "sensitivity")
    list_filter = ("system", "sensitivity")
    search_fields = ("name",)


@admin.register(models.ActionType)
class ActionTypeAdmin(ReadOnlyAdmin):
    list_display = ("name", "system", "mode")
    list_filter = ("system", "mode")
    search_fields = ("name",)


@admin.register(models.ValueList)
class ValueListAdmin(ReadOnlyAdmin):
    list_display = ("name",)


class AccessGrantInline(ReadOnlyInline):
    model = models.AccessGrant


class TierAssignmentInline(ReadOnlyInline):
    model = models.TierAssignment


@admin.register(models.Workflow)
class WorkflowAdmin(ReadOnlyAdmin):
    list_display = ("name", "version", "owner", "max_session_seconds")
    search_fields = ("name",)
    inlines = [AccessGrantInline, TierAssignmentInline]


@admin.register(models.WorkflowVersion)
class WorkflowVersionAdmin(ReadOnlyAdmin):
    list_display = ("workflow", "version", "created_at", "created_by")


@admin.register(models.ContextRule)
class ContextRuleAdmin(ReadOnlyAdmin):
    list_display = ("data_type", "handling", "clear", "persist")


@admin.register(models.AgentIdentity)
class AgentIdentityAdmin(ReadOnlyAdmin):
    list_display = ("name", "owner", "status", "recertify_by")
    list_filter = ("status",)
    search_fields = ("name", "owner")


@admin.register(models.ServiceCredential)
class ServiceCredentialAdmin(ReadOnlyAdmin):
    list_display = ("name", "system", "scope", "rotated_at")
    exclude = ("secret_encrypted",)


# Roles are Django groups that the IdP's groups claim sets at each sign-in: editing them (or a
# user's groups, or who is a superuser) in the admin would grant roles past the IdP.
admin.site.unregister(Group)
# django-auditlog's change log holds the field values of every model it watches: for auditors
# (/audit/ has the same changes as events), not for the admins who use Django admin.
admin.site.unregister(LogEntry)
User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class WardenUserAdmin(ReadOnlyAdmin, UserAdmin):
    """People come from the identity provider: nothing about them is edited here (not their
    email, their active flag, their roles or a password)."""

    def get_urls(self) -> list[Any]:
        # Drop UserAdmin's password-change view: no password is set through the admin.
        return [u for u in super().get_urls() if "password" not in str(getattr(u, "pattern", ""))]
