from __future__ import annotations

from collections.abc import Iterable

from django.apps import AppConfig


def never_persist_keys() -> Iterable[str]:
    """Detail keys whose values the audit trail must fingerprint: the never-persist data types
    and every data-object field mapped to one."""
    from governance.models import ContextRule, DataObject

    types = set(ContextRule.objects.filter(persist=False).values_list("data_type", flat=True))
    if not types:
        return ()
    keys = set(types)
    for fields in DataObject.objects.values_list("fields", flat=True):
        keys.update(name for name, data_type in (fields or {}).items() if data_type in types)
    return keys


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance registry"

    def ready(self) -> None:
        from auditlog.registry import auditlog
        from django.db.models.signals import post_delete, post_save

        from audit.redaction import forget_never_persist_keys, register_never_persist_provider
        from governance import models

        register_never_persist_provider(never_persist_keys)
        from governance.versions import connect_signals

        connect_signals()
        for model in (models.ContextRule, models.DataObject):
            post_save.connect(forget_never_persist_keys, sender=model, dispatch_uid=f"forget-rules-{model.__name__}")
            post_delete.connect(
                forget_never_persist_keys, sender=model, dispatch_uid=f"forget-rules-del-{model.__name__}"
            )
        # django-auditlog records who changed which configuration, and when.
        for audited in (
            models.System,
            models.DataObject,
            models.ValueList,
            models.Workflow,
            models.AccessGrant,
            models.TierAssignment,
            models.ContextRule,
        ):
            auditlog.register(audited)
        auditlog.register(models.ActionType, m2m_fields={"data_objects"})
        auditlog.register(models.AgentIdentity, m2m_fields={"workflows"})
        auditlog.register(models.ServiceCredential, exclude_fields=["secret_encrypted"])
