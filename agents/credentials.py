"""Credential rotation: the connector does the work; this records it, and raises the alarm on failure."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet

import audit
from agents import sessions
from agents.connectors import get_connector
from agents.connectors.scrub import error_text
from agents.models import SecurityAlert
from governance.models import ServiceCredential


class RotationFailed(Exception):
    pass


def credentials_due() -> list[ServiceCredential]:
    candidates: QuerySet[ServiceCredential] = ServiceCredential.objects.select_related("system").exclude(
        secret_encrypted=""
    )
    return [c for c in candidates if c.rotation_due]


def _secrets_of(credential: ServiceCredential) -> tuple[str, ...]:
    """The credential's secrets as stored now (the rotation may have switched before failing)."""
    fresh = ServiceCredential.objects.filter(pk=credential.pk).first()
    found = []
    for row in (credential, fresh):
        try:
            if row is not None and row.has_secret:
                found.append(row.reveal())
        except Exception:  # noqa: BLE001 - an unreadable secret cannot leak either
            continue
    return tuple(found)


def credential_rotate(credential: ServiceCredential, *, actor: Any = "system:rotation") -> ServiceCredential:
    """Rotate one credential. On failure the old secret stays, the failure is audited and alerted,
    and RotationFailed is raised (the Celery task retries with backoff)."""
    credential = ServiceCredential.objects.select_related("system").get(pk=credential.pk)
    try:
        get_connector(credential.system.connector).rotate(credential)
    except Exception as exc:  # noqa: BLE001 - any failure keeps the old credential
        # One message for the credential row, the audit event, the alert (mailed and sent to
        # webhooks) and the log, scrubbed of the secret before any of them sees it.
        message = error_text(exc, _secrets_of(credential))
        with transaction.atomic():
            ServiceCredential.objects.filter(pk=credential.pk).update(
                rotation_failures=credential.rotation_failures + 1, last_rotation_error=message
            )
            audit.record(
                "credential.rotation_failed",
                actor,
                system=credential.system,
                outcome="failed",
                details={"credential": credential.name, "error": message},
            )
        sessions.raise_alert(
            SecurityAlert.Kind.CREDENTIAL_ROTATION,
            f"rotation of credential {credential.name} failed: {message}",
            severity="medium",
        )
        raise RotationFailed(message) from None
    audit.record(
        "credential.rotated",
        actor,
        system=credential.system,
        outcome="rotated",
        details={"credential": credential.name},
    )
    return ServiceCredential.objects.get(pk=credential.pk)
