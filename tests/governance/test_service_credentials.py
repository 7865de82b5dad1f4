from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.test import Client

from governance import crypto
from governance.models import ServiceCredential, System

pytestmark = pytest.mark.django_db
SECRET = "sk-live-canary-7f3a9c"


@pytest.fixture
def credential() -> ServiceCredential:
    crm = System.objects.create(name="crm", connector="demo_crm")
    cred = ServiceCredential(name="crm-api", system=crm, scope="customers:rw")
    cred.set_secret(SECRET)
    cred.save()
    return cred


def test_it_stores_only_ciphertext(credential) -> None:
    stored = ServiceCredential.objects.get(pk=credential.pk)
    assert SECRET not in stored.secret_encrypted
    assert stored.reveal() == SECRET
    assert SECRET not in repr(stored) and SECRET not in str(stored)
    assert stored.rotated_at is not None


def test_it_decrypts_with_an_older_key_and_rekeys_to_the_newest(credential, settings) -> None:
    old_token = ServiceCredential.objects.get(pk=credential.pk).secret_encrypted
    new_key = Fernet.generate_key().decode()
    settings.WARDEN_SECRET_KEYS = [new_key, *settings.WARDEN_SECRET_KEYS]
    assert credential.reveal() == SECRET  # still readable under the old key
    rekeyed = crypto.reencrypt(old_token)
    settings.WARDEN_SECRET_KEYS = [new_key]  # the old key is gone
    assert crypto.decrypt(rekeyed) == SECRET
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(old_token)


def test_an_empty_secret_is_refused(credential) -> None:
    with pytest.raises(ValueError):
        credential.set_secret("")


def test_a_bad_key_is_a_clear_configuration_error(settings) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.WARDEN_SECRET_KEYS = ["not-a-fernet-key"]
    with pytest.raises(ImproperlyConfigured, match="key 1 is not a Fernet key"):
        crypto.encrypt("x")


def test_the_admin_never_shows_the_secret_and_the_auditlog_never_records_it(credential) -> None:
    from auditlog.models import LogEntry

    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw-long-enough-1")
    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/governance/servicecredential/{credential.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert SECRET not in body and credential.secret_encrypted not in body
    listing = client.get("/admin/governance/servicecredential/").content.decode()
    assert SECRET not in listing and credential.secret_encrypted not in listing
    response = client.post(
        f"/admin/governance/servicecredential/{credential.pk}/change/",
        {
            "name": "crm-api",
            "system": credential.system_id,
            "scope": "customers:rw",
            "rotation_period_days": 30,
            "new_secret": "sk-rotated-canary",
        },
    )
    assert response.status_code == 403  # the admin is read-only: secrets change through the service
    credential.refresh_from_db()
    assert credential.reveal() == SECRET
    from governance.actors import Actor
    from governance.services import credential_set

    credential_set(actor=Actor.cli("ops"), credential=credential, secret="sk-rotated-canary")
    credential.refresh_from_db()
    assert credential.reveal() == "sk-rotated-canary"
    logged = " ".join(str(e.changes) for e in LogEntry.objects.all())
    assert "sk-rotated-canary" not in logged and SECRET not in logged
    assert credential.secret_encrypted not in logged
