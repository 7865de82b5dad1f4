"""Where ServiceCredential secrets live: a small interface, and the default backend.

The row keeps what the backend's `store` returns. The default, FernetBackend, returns the
ciphertext itself (MultiFernet over WARDEN_SECRET_KEYS). A HashiCorp Vault backend would
write the secret to a KV v2 path (`warden/credentials/<name>`) with hvac, return a reference
such as `vault:warden/credentials/crm-api#3`, read it back in `load`, and make `rekey` a
no-op (Vault's own seal and rotation apply). Select one with WARDEN_SECRETS_BACKEND.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from governance import crypto


class SecretsBackend(Protocol):
    def store(self, name: str, plaintext: str) -> str:
        """Keep a secret; return what the database row keeps (a ciphertext or a reference)."""

    def load(self, stored: str) -> str:
        """The plaintext for what `store` returned. Raises crypto.SecretUnreadable."""

    def rekey(self, stored: str) -> str:
        """The same secret protected under the newest key (unchanged when that means nothing)."""


class FernetBackend:
    """Secrets encrypted in Warden's own database (the default)."""

    def store(self, name: str, plaintext: str) -> str:
        return crypto.encrypt(plaintext)

    def load(self, stored: str) -> str:
        return crypto.decrypt(stored)

    def rekey(self, stored: str) -> str:
        return crypto.reencrypt(stored)


@lru_cache(maxsize=2)
def _backend(path: str) -> SecretsBackend:
    try:
        return import_string(path)()
    except ImportError as exc:
        raise ImproperlyConfigured(f"WARDEN_SECRETS_BACKEND: cannot import {path!r} ({exc})") from None


def backend() -> SecretsBackend:
    return _backend(settings.WARDEN_SECRETS_BACKEND)
