"""Encryption at rest for ServiceCredential secrets (MultiFernet over WARDEN_SECRET_KEYS).

The first key encrypts; every key decrypts. To rotate, put a new key first, keep the old
ones after it, and run `manage.py secrets_rekey` (or ServiceCredential.rekey) so that every
secret is encrypted under the newest key; then the old key can be dropped.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("WARDEN_SECRET_KEYS is empty; give at least one Fernet key")
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except ValueError:
            raise ImproperlyConfigured(
                f"WARDEN_SECRET_KEYS: key {position} is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)"
            ) from None
    return MultiFernet(fernets)


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.WARDEN_SECRET_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("the secret cannot be decrypted with any key in WARDEN_SECRET_KEYS") from None


def reencrypt(token: str) -> str:
    """The same secret, encrypted under the newest key."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("the secret cannot be decrypted with any key in WARDEN_SECRET_KEYS") from None
