from __future__ import annotations

from django import forms
from django.contrib import admin

from governance import models


@admin.register(models.System)
class SystemAdmin(admin.ModelAdmin):
    list_display = ("name", "display_name", "connector")
    search_fields = ("name", "display_name")


@admin.register(models.DataObject)
class DataObjectAdmin(admin.ModelAdmin):
    list_display = ("name", "system", "sensitivity")
    list_filter = ("system", "sensitivity")
    search_fields = ("name",)


@admin.register(models.ActionType)
class ActionTypeAdmin(admin.ModelAdmin):
    list_display = ("name", "system", "mode")
    list_filter = ("system", "mode")
    filter_horizontal = ("data_objects",)
    search_fields = ("name",)


@admin.register(models.ValueList)
class ValueListAdmin(admin.ModelAdmin):
    list_display = ("name",)


class AccessGrantInline(admin.TabularInline):
    model = models.AccessGrant
    extra = 0


class TierAssignmentInline(admin.TabularInline):
    model = models.TierAssignment
    extra = 0


@admin.register(models.Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "owner", "max_session_seconds")
    search_fields = ("name",)
    readonly_fields = ("version", "created_at", "updated_at")
    inlines = [AccessGrantInline, TierAssignmentInline]


@admin.register(models.WorkflowVersion)
class WorkflowVersionAdmin(admin.ModelAdmin):
    list_display = ("workflow", "version", "created_at", "created_by")
    readonly_fields = ("workflow", "version", "spec", "created_at", "created_by")


@admin.register(models.ContextRule)
class ContextRuleAdmin(admin.ModelAdmin):
    list_display = ("data_type", "handling", "clear", "persist")


@admin.register(models.AgentIdentity)
class AgentIdentityAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "status", "recertify_by")
    list_filter = ("status",)
    search_fields = ("name", "owner")
    filter_horizontal = ("workflows",)


class ServiceCredentialForm(forms.ModelForm):
    """The secret is write-only: it can be set or replaced, never shown."""

    new_secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current secret. The stored secret is never displayed.",
    )

    class Meta:
        model = models.ServiceCredential
        fields = ("name", "system", "scope", "rotation_period_days")

    def save(self, commit: bool = True) -> models.ServiceCredential:
        credential = super().save(commit=False)
        if self.cleaned_data.get("new_secret"):
            credential.set_secret(self.cleaned_data["new_secret"])
        if commit:
            credential.save()
        return credential


@admin.register(models.ServiceCredential)
class ServiceCredentialAdmin(admin.ModelAdmin):
    form = ServiceCredentialForm
    list_display = ("name", "system", "scope", "rotated_at", "secret_set")
    readonly_fields = ("rotated_at", "created_at")

    @admin.display(boolean=True, description="secret set")
    def secret_set(self, obj: models.ServiceCredential) -> bool:
        return obj.has_secret
