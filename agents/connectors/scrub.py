"""The one place error text from connectors and credential rotation passes through before it
is stored, logged, alerted or audited: secrets become `[secret]`.

Two nets. The secrets the caller knows (the old and the new credential) are removed in every
form a library might print them: as given, URL-quoted, and, for a connection string, its
password alone. Then anything that looks like a secret: a password in a connection string or
URL, `key=value` pairs whose key names a secret, bearer tokens, Warden's own token formats, and
long random-looking words (upper and lower case letters and digits, 20+ characters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[secret]"
MAX_LENGTH = 500

_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.\-]*://[^\s:/@]*:)[^\s@/]+(?=@)", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|authorization)\b"
    r"[\"']?\s*[=:]\s*[\"']?)(?P<value>(?:bearer\s+)?[^\s\"',;&)]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<head>\bbearer\s+)[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)
_WARDEN_TOKEN = re.compile(r"\bw(?:ak|st|pt)_[A-Za-z0-9_\-]{8,}")
_RANDOM_WORD = re.compile(r"[A-Za-z0-9_\-+/=]{20,}")


def _forms(secret: str) -> set[str]:
    """The ways a secret may appear in a message."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret)}
    password = _dsn_password(secret)
    if password:
        forms |= {password, quote(password, safe=""), quote_plus(password)}
    return {f for f in forms if len(f) >= 4}


def _dsn_password(secret: str) -> str:
    if "://" in secret or "password=" in secret:
        try:
            from psycopg.conninfo import conninfo_to_dict

            return str(conninfo_to_dict(secret).get("password") or "")
        except Exception:  # noqa: BLE001 - not a connection string: nothing more to extract
            return ""
    return ""


def _looks_random(word: str) -> bool:
    return any(c.islower() for c in word) and any(c.isupper() for c in word) and any(c.isdigit() for c in word)


def scrub(text: object, secrets: Iterable[str] = ()) -> str:
    """`text` with every known secret and everything that looks like one replaced by [secret]."""
    message = str(text)
    for secret in sorted({f for s in secrets if s for f in _forms(str(s))}, key=len, reverse=True):
        message = message.replace(secret, REDACTED)
    message = _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, message)
    message = _KEY_VALUE.sub(
        lambda m: m.group("head") + (REDACTED if m.group("value") != REDACTED else m.group("value")), message
    )
    message = _BEARER.sub(lambda m: m.group("head") + REDACTED, message)
    message = _WARDEN_TOKEN.sub(REDACTED, message)
    return _RANDOM_WORD.sub(lambda m: REDACTED if _looks_random(m.group(0)) else m.group(0), message)


def error_text(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """How a failure is told to people and machines: its type and its scrubbed message."""
    return scrub(f"{type(exc).__name__}: {exc}", secrets)[:MAX_LENGTH]
