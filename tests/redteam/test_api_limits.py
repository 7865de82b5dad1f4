"""The decision API's rate limits (README: "Every endpoint is rate-limited: per client address
before authentication, so forged and revoked tokens are limited too (WARDEN_API_RATE_ADDRESS)").

With REST_FRAMEWORK's NUM_PROXIES unset, DRF's get_ident() keys the address limit on the whole
X-Forwarded-For header whenever a client sends one, so any client picks its own "address"."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db
RATES = {"agent": "1000/min", "session": "1000/min", "person": "1000/min", "address": "5/min"}


@pytest.fixture(autouse=True)
def fresh_counters(one_rate_window) -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def test_a_forged_x_forwarded_for_does_not_reset_the_address_limit(db, monkeypatch) -> None:
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", RATES)
    codes = [
        bearer(APIClient(), "wst_forged")
        .get(f"/api/v1/actions/{uuid.uuid4()}", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
        .status_code
        for i in range(8)
    ]
    assert 429 in codes, codes
