from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from agents import gateway, sessions
from agents.connectors.demo import DemoCRM
from agents.credentials import RotationFailed, credential_rotate, credentials_due
from agents.models import SecurityAlert
from audit.models import AuditEvent
from demo_systems.models import ApiKey
from governance.models import ServiceCredential

pytestmark = pytest.mark.django_db


def crm_key_works(secret: str) -> bool:
    return ApiKey.objects.filter(system="demo_crm", key_hash=ApiKey.hash(secret), active=True).exists()


def test_rotation_while_a_session_runs(demo) -> None:
    _, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    assert gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}).executed
    credential = ServiceCredential.objects.get(name="crm-api")
    old = credential.reveal()
    rotated = credential_rotate(credential)
    assert rotated.reveal() != old and crm_key_works(rotated.reveal())
    assert not crm_key_works(old)  # the old key stops working at the system
    assert gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1002"}).executed  # the session goes on
    event = AuditEvent.objects.get(kind="credential.rotated")
    assert event.details == {"credential": "crm-api"} and old not in str(event.details)


def test_a_call_holding_the_old_credential_retries_with_the_new_one(demo) -> None:
    stale = ServiceCredential.objects.get(name="crm-api")
    credential_rotate(ServiceCredential.objects.get(name="crm-api"))
    result = DemoCRM().execute("crm.get_customer", {"customer_id": "C-1001"}, stale, "k")
    assert result["data"]["id"] == "C-1001"


def test_a_failed_rotation_keeps_the_old_credential_and_alerts(demo, monkeypatch) -> None:
    credential = ServiceCredential.objects.get(name="crm-api")
    old = credential.reveal()
    keys_before = ApiKey.objects.filter(active=True).count()

    def broken(self, credential, secret):
        raise RuntimeError("the CRM's key service is down")

    monkeypatch.setattr(DemoCRM, "verify_secret", broken)
    with pytest.raises(RotationFailed, match="key service is down"):
        credential_rotate(credential)
    credential.refresh_from_db()
    assert credential.reveal() == old and crm_key_works(old)
    assert credential.rotation_failures == 1 and "key service is down" in credential.last_rotation_error
    assert ApiKey.objects.filter(active=True).count() == keys_before  # the half-made key was revoked
    assert SecurityAlert.objects.get(kind="credential_rotation")
    assert AuditEvent.objects.filter(kind="credential.rotation_failed").count() == 1


def test_due_credentials_and_the_command(demo) -> None:
    ServiceCredential.objects.filter(name="crm-api").update(rotated_at=timezone.now() - timedelta(days=31))
    assert [c.name for c in credentials_due()] == ["crm-api"]
    out = io.StringIO()
    call_command("credentials_rotate", "--due", stdout=out)
    assert "rotated  crm-api" in out.getvalue() and "1 rotated, 0 failed." in out.getvalue()
    assert credentials_due() == []
    call_command("credentials_rotate", "--all", stdout=out)
    assert "2 rotated" in out.getvalue()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no service credential named 'nope'"):
        call_command("credentials_rotate", "nope")


def test_the_periodic_task_only_rotates_what_is_due(demo, monkeypatch) -> None:
    from agents import tasks

    sent = []
    monkeypatch.setattr(tasks.rotate_credential, "delay", lambda pk: sent.append(pk))
    assert tasks.rotate_due_credentials() == 0
    ServiceCredential.objects.filter(name="ticketing-api").update(rotated_at=timezone.now() - timedelta(days=40))
    assert tasks.rotate_due_credentials() == 1
    assert sent == [ServiceCredential.objects.get(name="ticketing-api").pk]
    tasks.rotate_credential(sent[0])
    assert not ServiceCredential.objects.get(name="ticketing-api").rotation_due
