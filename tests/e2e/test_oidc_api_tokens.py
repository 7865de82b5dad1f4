"""Hardening item 7: against the real provider, an access token issued to another client at the
same IdP cannot read the audit API; a JWT access token issued for Warden's API can."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from rest_framework.test import APIClient

from agents.api import oidc_tokens
from governance.models import ExternalIdentity
from tests.api.conftest import bearer
from tests.approvals.conftest import make_user
from tests.e2e.conftest import LIVE_PORT

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
REDIRECT = f"http://127.0.0.1:{LIVE_PORT}/oidc/callback/"
WARDEN_API, OTHER_API = "urn:warden:api", "urn:other:api"


def sign_in_and_get_tokens(issuer: str, client: str, *, resource: str | None, user: str = "carol") -> dict[str, Any]:
    """The authorization code flow with PKCE, as a client's backend runs it, over plain HTTP."""
    http = requests.Session()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {
        "client_id": client,
        "response_type": "code",
        "scope": "openid groups" + (" audit:read" if resource else ""),
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "state",
        "nonce": "nonce",
        **({"resource": resource} if resource else {}),
    }
    response = http.get(f"{issuer}/auth?{urlencode(params)}", allow_redirects=False, timeout=10)
    page = http.get(urljoin(issuer, response.headers["Location"]), timeout=10)
    uid = re.search(r"/interaction/([^/\"]+)/login", page.text).group(1)
    response = http.post(
        f"{issuer}/interaction/{uid}/login", data={"login": user, "password": "pw"}, allow_redirects=False, timeout=10
    )
    location = urljoin(issuer, response.headers["Location"])
    while not location.startswith(REDIRECT):  # follow the IdP's own redirects, not the one back to Warden
        response = http.get(location, allow_redirects=False, timeout=10)
        location = urljoin(issuer, response.headers["Location"])
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = http.post(
        f"{issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client,
            "client_secret": f"{client}-secret",
            "code_verifier": verifier,
            **({"resource": resource} if resource else {}),
        },
        timeout=10,
    ).json()
    assert "access_token" in tokens, tokens
    return tokens


@pytest.fixture
def api_settings(oidc_settings) -> Any:
    oidc_settings.WARDEN_API_AUDIENCE = "warden"
    oidc_tokens._jwks.cache_clear()
    return oidc_settings


@pytest.fixture
def carol(api_settings) -> Any:
    """Carol (compliance) has signed in to Warden once, which links her account to the IdP's subject."""
    user = make_user("carol", "compliance")
    ExternalIdentity.objects.create(user=user, issuer=api_settings.OIDC_OP_ISSUER, subject="carol")
    return user


def _ClockAt(timestamp: float) -> type:
    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:
            return datetime.fromtimestamp(timestamp, tz)

    return Clock


def read_audit(token: str) -> Any:
    return bearer(APIClient(), token).get("/api/v1/audit/events", {"limit": 1})


def test_a_token_issued_for_wardens_api_reads_the_audit_trail(carol, oidc_provider) -> None:
    token = sign_in_and_get_tokens(oidc_provider, "warden", resource=WARDEN_API)["access_token"]
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == "warden"
    response = read_audit(token)
    assert response.status_code == 200, response.content
    assert "events" in response.json()


def test_a_token_issued_to_another_client_is_refused(carol, oidc_provider) -> None:
    """The other client's ordinary token works at the IdP's userinfo endpoint; that is not
    enough to read Warden's audit trail."""
    userinfo_token = sign_in_and_get_tokens(oidc_provider, "other-client", resource=None)["access_token"]
    assert requests.get(
        f"{oidc_provider}/me", headers={"Authorization": f"Bearer {userinfo_token}"}, timeout=10
    ).ok  # a live, valid token, just not for Warden
    for token in (
        userinfo_token,
        sign_in_and_get_tokens(oidc_provider, "other-client", resource=OTHER_API)["access_token"],
    ):
        response = read_audit(token)
        assert response.status_code == 401, response.content
        assert response["Content-Type"] == "application/problem+json"


def test_an_id_token_for_warden_is_not_an_access_token(carol, oidc_provider) -> None:
    id_token = sign_in_and_get_tokens(oidc_provider, "warden", resource=None)["id_token"]
    response = read_audit(id_token)
    assert response.status_code == 401 and "ID token" in response.json()["detail"]


def test_forged_expired_and_foreign_issuer_tokens_are_refused(carol, oidc_provider, api_settings, monkeypatch) -> None:
    good = sign_in_and_get_tokens(oidc_provider, "warden", resource=WARDEN_API)["access_token"]
    claims = jwt.decode(good, options={"verify_signature": False})
    header = jwt.get_unverified_header(good)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": header["kid"], "typ": "at+jwt"})
    unsigned = jwt.encode(claims, None, algorithm="none")
    for token in (forged, unsigned):
        assert read_audit(token).status_code == 401
    with monkeypatch.context() as later:  # the verifier's clock, a minute after the token's expiry
        later.setattr(jwt.api_jwt, "datetime", _ClockAt(claims["exp"] + oidc_tokens.LEEWAY_SECONDS + 60))
        assert "ExpiredSignatureError" in read_audit(good).json()["detail"]
    api_settings.OIDC_OP_ISSUER = "http://127.0.0.1:1/another-idp"
    assert read_audit(good).status_code == 401
    api_settings.OIDC_OP_ISSUER = oidc_provider
    assert read_audit(good).status_code == 200


def test_someone_who_never_signed_in_is_refused(api_settings, oidc_provider) -> None:
    token = sign_in_and_get_tokens(oidc_provider, "warden", resource=WARDEN_API)["access_token"]
    response = read_audit(token)
    assert response.status_code == 403 and "sign in to Warden once" in response.json()["detail"]
