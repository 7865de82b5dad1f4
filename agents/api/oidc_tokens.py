"""OIDC access tokens for the audit API: JWTs (RFC 9068) checked here, not at the IdP.

An access token proves something to the API it was issued for, and only to that one. Asking
the IdP's userinfo endpoint (what mozilla-django-oidc's DRF class does) proves only that the
token is alive: a token the IdP gave any other client passes. So the token must be a JWT
signed with a key from the IdP's JWKS, issued by OIDC_OP_ISSUER, unexpired, meant for
WARDEN_API_AUDIENCE (in `aud`, or as the authorized party `azp`), and not an ID token. The
person is the Warden account of that issuer and subject, made at their first browser sign-in;
when the token carries the groups claim, their roles follow it as at a sign-in.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jwt
from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.request import Request

LEEWAY_SECONDS = 30


@lru_cache(maxsize=4)
def _jwks(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)


def verify_access_token(token: str) -> dict[str, Any]:
    """The token's claims, or AuthenticationFailed saying what is wrong with it."""
    refuse = exceptions.AuthenticationFailed
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise refuse("the access token is not a JWT access token from the identity provider") from None
    algorithm = settings.OIDC_RP_SIGN_ALGO or "RS256"
    if header.get("alg") != algorithm:
        raise refuse(f"the access token is not signed with {algorithm}")
    try:
        key = _jwks(settings.OIDC_OP_JWKS_ENDPOINT).get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            issuer=settings.OIDC_OP_ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "sub"], "verify_aud": False},
        )
    except jwt.PyJWKClientConnectionError:
        raise exceptions.AuthenticationFailed("the identity provider's keys could not be fetched") from None
    except jwt.PyJWTError as exc:
        raise refuse(f"the access token is not valid ({type(exc).__name__})") from None
    audience = settings.WARDEN_API_AUDIENCE
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    # `azp` names the client that asked for the token, not the API it is for: a token whose
    # audience is another API is refused even when Warden's client asked for it.
    if audience not in auds and (aud is not None or claims.get("azp") != audience):
        raise refuse("the access token was not issued for this API")
    if "nonce" in claims or str(claims.get("typ", "")).lower() == "id":
        raise refuse("an ID token is not an access token")  # ID tokens travel in URLs (logout)
    return claims


class OIDCAccessTokenAuthentication(authentication.BaseAuthentication):
    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="warden"'

    def authenticate(self, request: Request) -> tuple[Any, str] | None:
        from agents.api.auth import _bearer

        token = _bearer(request)
        if token is None or token.startswith(("wst_", "wak_", "wpt_")) or not settings.OIDC_OP_JWKS_ENDPOINT:
            return None
        claims = verify_access_token(token)
        return _person(claims), token


def _person(claims: dict[str, Any]) -> Any:
    from governance.models import ExternalIdentity
    from governance.roles import Role, set_roles

    identity = (
        ExternalIdentity.objects.select_related("user").filter(issuer=claims["iss"], subject=str(claims["sub"])).first()
    )
    if identity is None or not identity.user.is_active:
        raise exceptions.PermissionDenied("sign in to Warden once in a browser before using its API")
    user = identity.user
    groups = claims.get(settings.WARDEN_OIDC_GROUPS_CLAIM)
    if isinstance(groups, list):
        set_roles(user, {role for role in Role.values if settings.WARDEN_ROLE_GROUPS[role] in groups})
    return user
