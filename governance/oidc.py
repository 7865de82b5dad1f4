"""OpenID Connect login (mozilla-django-oidc), with the checks it leaves to us.

- Users are matched by issuer and `sub` (ExternalIdentity), never by email.
- The ID token's `iss`, `aud` (and `azp`), `exp` and `iat` are checked here: the library
  verifies the signature and the nonce only.
- Roles follow the groups claim at every login, so a group removed at the IdP is a role lost.
- The login's `amr`, `acr` and `auth_time` are kept in the session for step-up checks.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationRequestView

import audit
from governance.models import ExternalIdentity
from governance.roles import Role, set_roles

SESSION_AUTH_CONTEXT = "warden_auth"


class WardenOIDCBackend(OIDCAuthenticationBackend):
    def verify_token(self, token: Any, **kwargs: Any) -> dict[str, Any]:
        payload = super().verify_token(token, **kwargs)
        issuer = settings.OIDC_OP_ISSUER
        if payload.get("iss") != issuer:
            raise SuspiciousOperation("ID token issuer does not match OIDC_OP_ISSUER")
        audience = settings.WARDEN_OIDC_AUDIENCE
        aud = payload.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if audience not in auds or (len(auds) > 1 and payload.get("azp") != audience):
            raise SuspiciousOperation("ID token audience is not this client")
        now = time.time()
        if not isinstance(payload.get("exp"), (int, float)) or payload["exp"] < now - 30:
            raise SuspiciousOperation("ID token has expired")
        if isinstance(payload.get("iat"), (int, float)) and payload["iat"] > now + 60:
            raise SuspiciousOperation("ID token was issued in the future")
        if not payload.get("sub"):
            raise SuspiciousOperation("ID token has no subject")
        self._id_claims = payload
        return payload

    def get_userinfo(self, access_token: str, id_token: str | None, payload: dict[str, Any] | None) -> dict[str, Any]:
        info = super().get_userinfo(access_token, id_token, payload)
        if payload is None:
            # An API call with a bare access token (DRF): the IdP's userinfo answer is the identity.
            return {**info, "iss": settings.OIDC_OP_ISSUER, "amr": [], "acr": "", "auth_time": None}
        if info.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("userinfo subject does not match the ID token")
        return {
            **info,
            "iss": payload["iss"],
            "amr": payload.get("amr") or [],
            "acr": payload.get("acr") or "",
            "auth_time": payload.get("auth_time"),
        }

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        ids = ExternalIdentity.objects.filter(issuer=claims["iss"], subject=claims["sub"]).values_list(
            "user", flat=True
        )
        return self.UserModel.objects.filter(pk__in=list(ids))

    @transaction.atomic
    def create_user(self, claims: dict[str, Any]) -> Any:
        digest = hashlib.sha256(f"{claims['iss']}|{claims['sub']}".encode()).hexdigest()[:16]
        user = self.UserModel.objects.create_user(username=f"oidc-{digest}", email=claims.get("email", ""))
        user.set_unusable_password()
        ExternalIdentity.objects.create(user=user, issuer=claims["iss"], subject=claims["sub"])
        return self.update_user(user, claims)

    def update_user(self, user: Any, claims: dict[str, Any]) -> Any:
        user.email = claims.get("email", user.email) or ""
        user.first_name = (claims.get("given_name") or "")[:150]
        user.last_name = (claims.get("family_name") or "")[:150]
        if not user.first_name and claims.get("name"):
            user.first_name = str(claims["name"])[:150]
        user.save()
        groups = claims.get(settings.WARDEN_OIDC_GROUPS_CLAIM) or []
        groups = set(groups) if isinstance(groups, list) else set()
        roles = {role for role in Role.values if settings.WARDEN_ROLE_GROUPS[role] in groups}
        set_roles(user, roles)
        user.is_staff = user.is_superuser = Role.ADMIN in roles  # Django admin only for Warden admins
        user.save(update_fields=["is_staff", "is_superuser"])
        ExternalIdentity.objects.filter(user=user).update(last_login_at=timezone.now())
        self._claims = claims
        return user

    def authenticate(self, request: Any, **kwargs: Any) -> Any:
        user = super().authenticate(request, **kwargs)
        if user is not None and request is not None:
            claims = getattr(self, "_claims", {})
            request.session[SESSION_AUTH_CONTEXT] = {
                "method": "oidc",
                "amr": list(claims.get("amr") or []),
                "acr": claims.get("acr") or "",
                "auth_time": claims.get("auth_time") or int(time.time()),
                "issuer": claims.get("iss", ""),
            }
            audit.record(
                "auth.login",
                user,
                outcome="succeeded",
                details={"method": "oidc", "amr": claims.get("amr") or [], "acr": claims.get("acr") or ""},
            )
        return user

    def get_user(self, user_id: Any) -> Any:
        # An account deactivated in Warden ends every session of it at the next request.
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None


def logout_url(request: Any) -> str:
    """Where logging out sends the browser: the IdP's end-session endpoint when it has one."""
    endpoint = settings.OIDC_OP_END_SESSION_ENDPOINT
    if not endpoint:
        return settings.LOGOUT_REDIRECT_URL
    params = {
        "client_id": settings.OIDC_RP_CLIENT_ID,
        "post_logout_redirect_uri": request.build_absolute_uri(settings.LOGOUT_REDIRECT_URL),
    }
    id_token = request.session.get("oidc_id_token")
    if id_token:
        params["id_token_hint"] = id_token
    return f"{endpoint}?{urlencode(params)}"


def stepup_satisfied(session: Any) -> bool:
    """A recent, multi-factor login: `amr` has mfa (or `acr` is WARDEN_STEPUP_ACR), at most
    WARDEN_STEPUP_MAX_AGE seconds old."""
    auth = (session.get(SESSION_AUTH_CONTEXT) or {}) if session is not None else {}
    strong = "mfa" in (auth.get("amr") or []) or bool(
        settings.WARDEN_STEPUP_ACR and auth.get("acr") == settings.WARDEN_STEPUP_ACR
    )
    return strong and time.time() - float(auth.get("auth_time") or 0) <= settings.WARDEN_STEPUP_MAX_AGE


class StepUpAuthenticationRequestView(OIDCAuthenticationRequestView):
    """The login redirect; with ?stepup=1 it asks the IdP for a fresh login with MFA."""

    def get_extra_params(self, request: Any) -> dict[str, str]:
        params = dict(super().get_extra_params(request))
        if request.GET.get("stepup"):
            params.update(prompt="login", max_age="0")
            if settings.WARDEN_STEPUP_ACR:
                params["acr_values"] = settings.WARDEN_STEPUP_ACR
        return params


def safe_next(request: Any, value: str | None, default: str) -> str:
    """Where to send a person next, from a value the browser sent (a form's `back`, a `next`
    query): only a path or URL of this host (over HTTPS when the request was), else `default`.
    Every redirect to a submitted address goes through here, so none leads off the site."""
    from django.utils.http import url_has_allowed_host_and_scheme

    if value and url_has_allowed_host_and_scheme(value, {request.get_host()}, require_https=request.is_secure()):
        return value
    return default


def stepup_url(request: Any, next_path: str) -> str:
    """Where to send a person for a fresh MFA sign-in, coming back to next_path."""
    from urllib.parse import urlencode

    from django.urls import reverse

    query = urlencode({"stepup": 1, "next": next_path})
    if settings.OIDC_RP_CLIENT_ID and settings.OIDC_OP_AUTHORIZATION_ENDPOINT:
        return f"{reverse('oidc_authentication_init')}?{query}"
    return f"{reverse('login')}?{query}"
