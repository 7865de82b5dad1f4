"""Canonical JSON and keyed fingerprints shared by the audit chain and the gateway."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any

import rfc8785
from django.conf import settings

_CHAIN_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def chain_json(value: Any) -> bytes:
    """Deterministic JSON for hashing chain events.

    Sorted keys, no insignificant whitespace, UTF-8. It only has to survive its own round
    trip through the database (see db_stable), so it uses the fast standard encoder; NaN
    and infinities are refused because neither database stores them as JSON.
    """
    return _CHAIN_ENCODER.encode(value).encode()


def db_stable(value: Any) -> Any:
    """value as it will read back from the database, so that its hash can be recomputed.

    PostgreSQL's jsonb keeps numbers as exact decimals: a float written as 1e+16 reads back
    as the integer 10000000000000000. Such floats are turned into that integer up front.
    """
    if isinstance(value, float):
        if value == 0.0:
            return 0.0  # numeric has no negative zero
        text = repr(value)
        if "e" in text and value.is_integer():
            return int(Decimal(text))
        return value
    if isinstance(value, dict):
        return {k: db_stable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [db_stable(v) for v in value]
    return value


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON: equal values from any client give equal bytes (1.0 == 1)."""
    return rfc8785.dumps(value)


def params_hash(params: Any) -> str:
    """SHA-256 of the canonical JSON of an action's parameters."""
    return hashlib.sha256(canonical_json(params)).hexdigest()


def fingerprint(value: Any) -> str:
    """A keyed stand-in for a never-persist value: equal values correlate, none can be read back."""
    try:
        data = canonical_json(value)
    except (TypeError, ValueError, rfc8785.CanonicalizationError):
        data = repr(value).encode()
    digest = hmac.new(settings.WARDEN_AUDIT_KEY.encode(), b"fingerprint\x00" + data, hashlib.sha256)
    return "fp:" + digest.hexdigest()[:32]
