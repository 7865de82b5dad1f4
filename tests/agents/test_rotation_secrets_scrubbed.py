"""Hardening item 9: a rotation whose connector fails with the secret in its error message
leaves no trace of the secret in the database, the logs, the alert (mail and webhook), the
audit trail or its exports."""

from __future__ import annotations

import io
import logging
from urllib.parse import quote

import pytest
from django.apps import apps
from django.core import mail
from django.core.management import call_command

from agents.connectors.base import ConnectorError
from agents.connectors.demo import DemoCRM
from agents.connectors.scrub import REDACTED, scrub
from agents.credentials import RotationFailed, credential_rotate
from agents.models import SecurityAlert
from audit.models import AuditEvent
from config.celery import app as celery_app
from governance.models import ServiceCredential
from tests.approvals.conftest import make_user
from tests.approvals.test_notifications import Receiver

pytestmark = pytest.mark.django_db


def every_row_as_text() -> str:
    """Every value of every row of every table Warden's models have."""
    return "\n".join(str(list(model.objects.values_list())) for model in apps.get_models())


@pytest.fixture
def eager():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_a_failed_rotation_leaks_no_secret(
    demo, eager, settings, monkeypatch, caplog, django_capture_on_commit_callbacks
) -> None:
    make_user("sam", "security")
    receiver = Receiver([])
    settings.WARDEN_WEBHOOK_URLS, settings.WARDEN_WEBHOOK_SECRET = [receiver.url], "hook-secret"
    credential = ServiceCredential.objects.get(name="crm-api")
    old = credential.reveal()
    made: list[str] = []
    create = DemoCRM.create_secret

    def create_and_remember(self, credential):
        made.append(create(self, credential))
        return made[-1]

    def verify_that_blabs(self, credential, secret):
        raise RuntimeError(
            f"login refused for key {secret} (was {old}); tried https://svc:{quote(secret)}@crm.example/v1 "
            f"with Authorization: Bearer {secret}"
        )

    monkeypatch.setattr(DemoCRM, "create_secret", create_and_remember)
    monkeypatch.setattr(DemoCRM, "verify_secret", verify_that_blabs)
    caplog.set_level(logging.DEBUG)
    out, err = io.StringIO(), io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RotationFailed) as failed:
            credential_rotate(credential)
        with pytest.raises(SystemExit):
            call_command("credentials_rotate", "crm-api", stdout=out, stderr=err)
    receiver.close()
    exports = io.StringIO()
    call_command("audit_export", "--format", "jsonl", stdout=exports)
    call_command("audit_export", "--format", "csv", stdout=exports)

    assert len(made) == 2 and old not in made
    credential.refresh_from_db()
    assert credential.reveal() == old and REDACTED in credential.last_rotation_error
    assert "login refused" in credential.last_rotation_error  # the useful part of the message stays
    assert AuditEvent.objects.filter(kind="credential.rotation_failed").count() == 2
    assert SecurityAlert.objects.filter(kind="credential_rotation").count() == 2
    alert_mails = [m for m in mail.outbox if "Security alert" in m.subject]
    assert len(alert_mails) == 2 and len(receiver.received) == 2
    places = {
        "database": every_row_as_text(),
        "exception": str(failed.value),
        "log": caplog.text,
        "command output": out.getvalue() + err.getvalue(),
        "mail": "\n".join(f"{m.subject}\n{m.body}" for m in mail.outbox),
        "webhooks": "\n".join(body.decode() for _, body in receiver.received),
        "exports": exports.getvalue(),
    }
    for secret in [old, *made]:
        for form in (secret, quote(secret), secret[-24:]):
            leaks = [place for place, text in places.items() if form in text]
            assert not leaks, f"a secret is in: {leaks}"


@pytest.mark.parametrize(
    "text",
    [
        "connection to postgres://warden:Hunter2Pass@db:5432/x failed",
        "host=db user=warden password=Hunter2Pass dbname=x",
        'auth failed: {"api_key": "Hunter2Pass"}',
        "Authorization: Bearer Hunter2Pass",
        "the key wak_Hunter2Pass was refused",
        "key demo_crm_q9XkT2vLm8RwPz4NbY7cHsJd was refused",
    ],
)
def test_things_that_look_like_secrets_are_scrubbed(text: str) -> None:
    scrubbed = scrub(text)
    assert "Hunter2Pass" not in scrubbed and "q9XkT2vLm8RwPz4NbY7cHsJd" not in scrubbed and REDACTED in scrubbed


def test_ordinary_words_and_ids_survive() -> None:
    text = "crm.get_customer C-1001 failed for session 1b4e28ba-2fa1-11d2-883f-0016d3cca427 (timeout after 5 s)"
    assert scrub(text) == text


def test_a_connector_error_is_scrubbed_when_it_is_made() -> None:
    assert str(ConnectorError("refused password=Hunter2Pass")) == f"refused password={REDACTED}"
    assert "s3cr3t-value" not in str(ConnectorError("key s3cr3t-value refused", secrets=("s3cr3t-value",)))
