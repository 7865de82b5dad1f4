from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from agents import gateway, sessions
from agents.models import ActionRequest
from audit.models import AuditEvent
from governance.models import ServiceCredential

pytestmark = pytest.mark.django_db


def test_after_a_rekey_the_old_key_can_go(demo, settings) -> None:
    _, token = sessions.start("refund-bot", "refund-triage", "test", "user:dana")
    pending = gateway.authorize(
        token, "crm.issue_refund", {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "x"}
    )
    secrets_before = {c.name: c.reveal() for c in ServiceCredential.objects.all()}
    old_keys = list(settings.WARDEN_SECRET_KEYS)
    settings.WARDEN_SECRET_KEYS = [Fernet.generate_key().decode(), *old_keys]
    err, out = io.StringIO(), io.StringIO()
    call_command("secrets_rekey", stdout=out, stderr=err)
    assert "3 secrets re-encrypted under the newest key, 0 unreadable." in out.getvalue()
    assert "service credentials" in err.getvalue() and "2/2" in err.getvalue()  # the progress bar
    settings.WARDEN_SECRET_KEYS = settings.WARDEN_SECRET_KEYS[:1]  # the old key is removed
    assert {c.name: c.reveal() for c in ServiceCredential.objects.all()} == secrets_before
    assert gateway.release(ActionRequest.objects.get(pk=pending.action_request_id)).status == "succeeded"
    assert AuditEvent.objects.get(kind="secrets.rekeyed").details == {"rekeyed": 3, "unreadable": 0}


def test_unreadable_secrets_are_reported_not_crashed_on(demo, settings) -> None:
    settings.WARDEN_SECRET_KEYS = [Fernet.generate_key().decode()]  # none of the old keys
    err = io.StringIO()
    with pytest.raises(SystemExit) as info:
        call_command("secrets_rekey", "--quiet", stdout=io.StringIO(), stderr=err)
    assert info.value.code == 1
    assert "cannot be decrypted with any key" in err.getvalue()
