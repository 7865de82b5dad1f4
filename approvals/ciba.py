"""Approval on the reviewer's own device through the identity provider: OpenID Connect CIBA
(Client-Initiated Backchannel Authentication, poll mode). See docs/decisions/0019.

1. A reviewer asks for it on the request page (`ciba_request_start`). Warden checks what the
   web decision would check, then asks the IdP's `backchannel_authentication_endpoint` to
   authenticate that reviewer (login_hint: their `sub` at the IdP, or their email), with a
   binding message naming the action and the first characters of the parameter hash, which
   the reviewer's device shows and the request page repeats.
2. A Celery task polls the token endpoint (`ciba_request_poll`), honouring `interval` and
   `slow_down`, until the IdP answers or the deadline passes. Never in a web request.
3. On success the ID token is verified here (signature from the IdP's JWKS, iss, aud/azp, exp,
   iat after the request began, sub is the reviewer, nonce and auth_req_id when present) and
   the approval goes through `approvals.services.action_request_decide`, the web's path, with
   the token kept in the decision's auth_context as proof. `access_denied` from the device is
   that reviewer's rejection. An expired request, an error or a token that does not verify
   decides nothing: fail closed, audited.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta
from functools import lru_cache
from typing import Any

import jwt
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from agents.models import ActionRequest
from approvals import services
from approvals.models import ApprovalDecision, CibaRequest

log = logging.getLogger(__name__)

GRANT_TYPE = "urn:openid:params:grant-type:ciba"
AUTH_REQ_ID_CLAIM = "urn:openid:params:jwt:claim:auth_req_id"
LEEWAY_SECONDS = 30
SLOW_DOWN_SECONDS = 5  # RFC 8628 3.5, which CIBA's poll mode follows
STRANDED_AFTER_SECONDS = 60  # a pending request not polled for this long lost its task
DISCOVERY_TTL_SECONDS = 300
DENIED_COMMENT = "denied on the reviewer's device (identity provider)"
MAX_RESPONSE_BYTES = 1_000_000

Refused = services.DecisionRefused


class Unreachable(Exception):
    """The IdP did not answer (network, timeout): worth another poll before the deadline."""


# --- the binding message --------------------------------------------------------------------

# Characters every IdP we know accepts (oidc-provider's default: [a-zA-Z0-9-._+/!?#]{1,20}).
_UNSAFE = re.compile(r"[^A-Za-z0-9._+#-]")


def binding_message(action: str, params_hash: str, limit: int | None = None) -> str:
    """What the device shows, so the reviewer sees it is this action with these parameters:
    `issue_refund#3fa9c1` (the full action name and 8 hash characters when the IdP allows)."""
    limit = max(int(limit or settings.WARDEN_CIBA_BINDING_MESSAGE_MAX), 8)
    full = _UNSAFE.sub("_", action)
    if len(full) + 1 + 8 <= limit:
        return f"{full}#{params_hash[:8]}"
    verb = _UNSAFE.sub("_", action.rsplit(".", 1)[-1])
    room = limit - 7
    return f"{verb[:room]}#{params_hash[:6]}"


# --- talking to the IdP ---------------------------------------------------------------------


def _authenticated(form: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The form and headers of a request authenticated as Warden's client at the IdP."""
    form, headers = dict(form), {}
    client_id, secret = settings.WARDEN_CIBA_CLIENT_ID, settings.WARDEN_CIBA_CLIENT_SECRET
    if settings.WARDEN_CIBA_CLIENT_AUTH == "client_secret_basic":
        pair = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form.update(client_id=client_id, client_secret=secret)
    return form, headers


def _post(url: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    form, headers = _authenticated(form)
    return _http(url, form, headers)


def _http(
    url: str, form: dict[str, str] | None = None, extra_headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """GET (form None) or POST a form; the status and the JSON body."""
    headers = {"Accept": "application/json", "User-Agent": "Warden-CIBA/1", **(extra_headers or {})}
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if not url.startswith(("https://", "http://")):
        raise Refused("the identity provider's endpoint is not an http(s) URL")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=settings.WARDEN_CIBA_HTTP_TIMEOUT) as response:
            status, raw = int(response.status), response.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        status, raw = int(exc.code), exc.read(MAX_RESPONSE_BYTES)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Unreachable(f"{url}: {exc}") from None
    try:
        payload = json.loads(raw or b"{}")
    except ValueError:
        payload = {}
    return status, payload if isinstance(payload, dict) else {}


_discovered: dict[str, tuple[float, dict[str, Any]]] = {}


def discovery(issuer: str) -> dict[str, Any]:
    """The IdP's metadata, checked: the same issuer, the endpoints CIBA needs, poll mode."""
    cached = _discovered.get(issuer)
    if cached and time.monotonic() - cached[0] < DISCOVERY_TTL_SECONDS:
        return cached[1]
    status, meta = _http(f"{issuer}/.well-known/openid-configuration")
    if status != 200:
        raise Unreachable(f"the identity provider's discovery document answered {status}")
    if str(meta.get("issuer", "")).rstrip("/") != issuer:
        raise Refused("the identity provider's discovery document names another issuer")
    for key in ("backchannel_authentication_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(meta.get(key), str) or not meta[key]:
            raise Refused(f"the identity provider does not offer CIBA (no {key} in its discovery document)")
    if "poll" not in (meta.get("backchannel_token_delivery_modes_supported") or []):
        raise Refused("the identity provider does not offer CIBA in poll mode")
    _discovered[issuer] = (time.monotonic(), meta)
    return meta


@lru_cache(maxsize=4)
def _jwks(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=settings.WARDEN_CIBA_HTTP_TIMEOUT)


def _signing_key(jwks_uri: str, token: str) -> Any:
    return _jwks(jwks_uri).get_signing_key_from_jwt(token).key


# --- the ID token ---------------------------------------------------------------------------


def verify_id_token(token: str, *, ciba_request: CibaRequest, jwks_uri: str) -> dict[str, Any]:
    """The ID token's claims when it proves that this request's reviewer authenticated at the
    IdP for this request; Refused saying what is wrong otherwise."""
    cr = ciba_request
    algorithm = settings.OIDC_RP_SIGN_ALGO or "RS256"
    client_id = settings.WARDEN_CIBA_CLIENT_ID
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Refused("the ID token is not a JWT") from None
    if header.get("alg") != algorithm:
        raise Refused(f"the ID token is not signed with {algorithm}")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _signing_key(jwks_uri, token),
            algorithms=[algorithm],
            issuer=cr.issuer,
            audience=client_id,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.PyJWKClientConnectionError:
        raise Refused("the identity provider's keys could not be fetched") from None
    except jwt.ExpiredSignatureError:
        raise Refused("the ID token has expired") from None
    except jwt.InvalidAudienceError:
        raise Refused("the ID token was issued for another client") from None
    except jwt.InvalidIssuerError:
        raise Refused("the ID token comes from another issuer") from None
    except jwt.PyJWTError as exc:
        raise Refused(f"the ID token is not valid ({type(exc).__name__})") from None
    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != client_id:
        raise Refused("the ID token was issued for another client (azp)")
    started = cr.created_at.timestamp() - LEEWAY_SECONDS
    if not isinstance(claims["iat"], (int, float)) or claims["iat"] < started:
        raise Refused("the ID token was issued before this request: it proves nothing about it")
    auth_time = claims.get("auth_time")
    if auth_time is not None and (not isinstance(auth_time, (int, float)) or auth_time < started):
        raise Refused("the authentication it records happened before this request")
    if cr.subject:
        if str(claims["sub"]) != cr.subject:
            raise Refused("the ID token is for another person")
    elif not (str(claims.get("email", "")).lower() == cr.login_hint.lower() and claims.get("email_verified") is True):
        raise Refused("the ID token is not for the reviewer's verified email")
    if "nonce" in claims and claims["nonce"] != cr.nonce:
        raise Refused("the ID token is bound to another request (nonce)")
    if AUTH_REQ_ID_CLAIM in claims and claims[AUTH_REQ_ID_CLAIM] != cr.auth_req_id:
        raise Refused("the ID token is bound to another request (auth_req_id)")
    return claims


# --- starting a request ---------------------------------------------------------------------


def _login_hint(reviewer: Any, issuer: str) -> tuple[str, str]:
    """(login_hint, the `sub` the ID token must carry, or "" to match the verified email)."""
    if settings.WARDEN_CIBA_LOGIN_HINT == "email":
        if not reviewer.email:
            raise Refused("your Warden account has no email for the identity provider to find you by")
        return reviewer.email, ""
    identity = reviewer.external_identities.filter(issuer=issuer).first()
    if identity is None:
        raise Refused("sign in to Warden through the identity provider once, so that it can find you on your device")
    return identity.subject, identity.subject


def _check_open(ar: ActionRequest, reviewer: Any, params_hash: str) -> None:
    """What the decision itself will check again at the end: asked first, so the device is
    never bothered about a request the reviewer could not decide."""
    if ar.status != ActionRequest.Status.AWAITING_APPROVAL:
        raise Refused(f"this request is already {ar.status.replace('_', ' ')}")
    if ar.expires_at is not None and ar.expires_at <= timezone.now():
        raise Refused("this request has expired")
    if params_hash != ar.params_hash:
        raise Refused("the parameters changed since this page was loaded: reload it and review again")
    if ApprovalDecision.objects.filter(action_request=ar, reviewer=reviewer).exists():
        raise Refused("you have already decided on this request")
    if CibaRequest.objects.filter(action_request=ar, reviewer=reviewer, status=CibaRequest.Status.PENDING).exists():
        raise Refused("a request is already waiting on your device")


def _audit(kind: str, cr: CibaRequest, ar: ActionRequest, outcome: str, **details: Any) -> None:
    audit.record(
        kind,
        cr.reviewer,
        session=ar.session,
        workflow=ar.session.workflow,
        action=ar.action,
        tier=ar.tier,
        outcome=outcome,
        details={
            "action_request": str(ar.id),
            "ciba_request": cr.pk,
            "binding_message": cr.binding_message,
            "params_hash": cr.params_hash,
            "issuer": cr.issuer,
            **details,
        },
    )


def ciba_request_start(*, action_request: ActionRequest, reviewer: Any, params_hash: str) -> CibaRequest:
    """Ask the IdP to have this reviewer confirm their approval on their own device."""
    if not settings.WARDEN_CIBA_ENABLED:
        raise Refused("approval on your device is not configured here (WARDEN_CIBA_ENABLED)")
    services.action_request_check_reviewer(action_request=action_request, reviewer=reviewer)
    ar = ActionRequest.objects.select_related("session__workflow").get(pk=action_request.pk)
    _check_open(ar, reviewer, params_hash)
    issuer = settings.WARDEN_CIBA_ISSUER
    hint, subject = _login_hint(reviewer, issuer)
    now = timezone.now()
    deadline = now + timedelta(seconds=settings.WARDEN_CIBA_EXPIRES_SECONDS)
    if ar.expires_at is not None:
        deadline = min(deadline, ar.expires_at)
    seconds = int((deadline - now).total_seconds())
    if seconds < 1:
        raise Refused("this request expires too soon to confirm it on your device")
    message = binding_message(ar.action, ar.params_hash)
    nonce = secrets.token_urlsafe(24)
    pending = CibaRequest(
        action_request=ar,
        reviewer=reviewer,
        params_hash=ar.params_hash,
        binding_message=message,
        issuer=issuer,
        login_hint=hint,
        subject=subject,
        nonce=nonce,
        created_at=now,
        expires_at=deadline,
    )
    try:
        meta = discovery(issuer)
        status, body = _post(
            meta["backchannel_authentication_endpoint"],
            {
                "scope": "openid",
                "login_hint": hint,
                "binding_message": message,
                "requested_expiry": str(seconds),
                "nonce": nonce,
            },
        )
    except Unreachable as exc:
        log.warning("CIBA request not sent: %s", exc)
        raise Refused("the identity provider could not be reached: try again, or decide here") from None
    auth_req_id = body.get("auth_req_id")
    if status != 200 or not isinstance(auth_req_id, str) or not auth_req_id:
        error = str(body.get("error") or f"HTTP {status}")[:100]
        description = str(body.get("error_description") or "")[:200]
        with transaction.atomic():
            _audit("approval.ciba_failed", pending, ar, "failed", reason=f"{error}: {description}".strip(": "))
        raise Refused(
            f"the identity provider refused to ask your device ({error}{': ' + description if description else ''})"
        )
    expires_in = body.get("expires_in")
    if isinstance(expires_in, int) and 0 < expires_in < seconds:
        pending.expires_at = now + timedelta(seconds=expires_in)
    interval = body.get("interval")
    pending.interval = max(interval if isinstance(interval, int) else settings.WARDEN_CIBA_DEFAULT_INTERVAL, 1)
    pending.auth_req_id = auth_req_id
    with transaction.atomic():
        try:
            with transaction.atomic():
                pending.save()
        except IntegrityError:
            raise Refused("a request is already waiting on your device") from None
        _audit("approval.ciba_requested", pending, ar, "requested", login_hint=hint)
        pk = pending.pk
        transaction.on_commit(lambda: enqueue_poll(pk, 0))
    return pending


def enqueue_poll(ciba_request_id: int, poll_no: int, countdown: float = 0) -> None:
    from approvals.tasks import ciba_request_poll as ciba_request_poll_task

    ciba_request_poll_task.apply_async((ciba_request_id, poll_no), countdown=max(countdown, 0))


# --- polling --------------------------------------------------------------------------------


def _finish(cr: CibaRequest, status: str, reason: str, *, id_token: str = "", kind: str = "") -> bool:
    """End a pending request once (a conditional update), with its audit event when `kind`."""
    with transaction.atomic():
        done = CibaRequest.objects.filter(pk=cr.pk, status=CibaRequest.Status.PENDING).update(
            status=status, reason=reason[:2000], id_token=id_token, finished_at=timezone.now()
        )
        if done and kind:
            _audit(kind, cr, cr.action_request, status, reason=reason)
    cr.status = status if done else cr.status
    return bool(done)


def ciba_request_poll(ciba_request_id: int, poll_no: int) -> tuple[float, int] | None:
    """One poll of the token endpoint. Returns (seconds until the next poll, its number), or
    None when the request is over. A task whose poll number is stale does nothing."""
    cr = (
        CibaRequest.objects.select_related("action_request__session__workflow", "reviewer")
        .filter(pk=ciba_request_id)
        .first()
    )
    if cr is None or cr.status != CibaRequest.Status.PENDING or cr.polls != poll_no:
        return None
    now = timezone.now()
    ar = cr.action_request
    if ar.status != ActionRequest.Status.AWAITING_APPROVAL:
        _finish(
            cr,
            CibaRequest.Status.EXPIRED,
            f"the request is {ar.status.replace('_', ' ')}: nothing to decide",
            kind="approval.ciba_expired",
        )
        return None
    if now >= cr.expires_at:
        _finish(cr, CibaRequest.Status.EXPIRED, "no answer on the device in time", kind="approval.ciba_expired")
        return None
    if cr.next_poll_at > now:  # early: the IdP asked us to wait `interval` between polls
        return (cr.next_poll_at - now).total_seconds(), poll_no
    claimed = CibaRequest.objects.filter(pk=cr.pk, status=CibaRequest.Status.PENDING, polls=poll_no).update(
        polls=poll_no + 1, next_poll_at=now + timedelta(seconds=cr.interval)
    )
    if not claimed:
        return None
    cr.polls = poll_no + 1
    try:
        meta = discovery(cr.issuer)
        status, body = _post(meta["token_endpoint"], {"grant_type": GRANT_TYPE, "auth_req_id": cr.auth_req_id})
    except Unreachable as exc:
        log.warning("CIBA poll %s: %s", cr.pk, exc)
        return float(cr.interval), cr.polls
    except Refused as exc:
        _finish(cr, CibaRequest.Status.FAILED, str(exc), kind="approval.ciba_failed")
        return None
    if status == 200:
        _on_token(cr, body, meta["jwks_uri"])
        return None
    error = body.get("error")
    if error == "authorization_pending":
        return float(cr.interval), cr.polls
    if error == "slow_down":
        cr.interval += SLOW_DOWN_SECONDS
        CibaRequest.objects.filter(pk=cr.pk).update(
            interval=cr.interval, next_poll_at=now + timedelta(seconds=cr.interval)
        )
        return float(cr.interval), cr.polls
    if error == "access_denied":
        _on_denied(cr)
        return None
    if error == "expired_token":
        _finish(cr, CibaRequest.Status.EXPIRED, "the identity provider's request expired", kind="approval.ciba_expired")
        return None
    if status >= 500 or status == 429:
        return float(cr.interval), cr.polls
    _finish(
        cr,
        CibaRequest.Status.FAILED,
        f"the identity provider answered {str(error or status)[:100]}",
        kind="approval.ciba_failed",
    )
    return None


def _on_token(cr: CibaRequest, body: dict[str, Any], jwks_uri: str) -> None:
    token = body.get("id_token")
    if not isinstance(token, str) or not token:
        _finish(cr, CibaRequest.Status.FAILED, "the token response has no ID token", kind="approval.ciba_failed")
        return
    try:
        claims = verify_id_token(token, ciba_request=cr, jwks_uri=jwks_uri)
    except Refused as exc:
        # The token is kept for the investigation; it decided nothing.
        _finish(cr, CibaRequest.Status.FAILED, f"ID token refused: {exc}", id_token=token, kind="approval.ciba_failed")
        return
    auth = {
        "method": "ciba",
        "issuer": claims["iss"],
        "sub": str(claims["sub"]),
        "amr": list(claims.get("amr") or []),
        "acr": str(claims.get("acr") or ""),
        "auth_time": claims.get("auth_time") or claims["iat"],
        "binding_message": cr.binding_message,
        "id_token": token,
        "id_token_sha256": hashlib.sha256(token.encode()).hexdigest(),
    }
    try:
        services.action_request_decide(
            action_request=cr.action_request,
            reviewer=cr.reviewer,
            decision=ApprovalDecision.Decision.APPROVE,
            comment=f"approved on my device ({cr.binding_message})",
            params_hash=cr.params_hash,
            auth=auth,
        )
    except Refused as exc:
        _finish(cr, CibaRequest.Status.FAILED, f"approval refused: {exc}", id_token=token, kind="approval.ciba_failed")
        return
    _finish(cr, CibaRequest.Status.APPROVED, "approved on the device", id_token=token)


def _on_denied(cr: CibaRequest) -> None:
    """The reviewer said no on their device: their rejection, through the same service. No ID
    token comes with a denial; the IdP's answer to Warden's authenticated poll is the evidence,
    and a rejection is the safe direction."""
    auth = {
        "method": "ciba",
        "issuer": cr.issuer,
        "sub": cr.subject,
        "amr": [],
        "acr": "",
        "auth_time": time.time(),
        "binding_message": cr.binding_message,
    }
    try:
        services.action_request_decide(
            action_request=cr.action_request,
            reviewer=cr.reviewer,
            decision=ApprovalDecision.Decision.REJECT,
            comment=DENIED_COMMENT,
            params_hash=cr.params_hash,
            auth=auth,
        )
    except Refused as exc:
        _finish(
            cr,
            CibaRequest.Status.DENIED,
            f"denied on the device; no rejection recorded: {exc}",
            kind="approval.ciba_failed",
        )
        return
    _finish(cr, CibaRequest.Status.DENIED, "denied on the device")


def ciba_request_sweep() -> int:
    """Re-enqueue pending requests whose polling task was lost (a worker died): recovery by
    state, as for sessions (docs/decisions/0012). Stale duplicates die on the poll number."""
    cutoff = timezone.now() - timedelta(seconds=STRANDED_AFTER_SECONDS)
    stranded = list(
        CibaRequest.objects.filter(status=CibaRequest.Status.PENDING, next_poll_at__lt=cutoff).values_list(
            "pk", "polls"
        )
    )
    for pk, polls in stranded:
        enqueue_poll(pk, polls)
    return len(stranded)


def latest_for(action_request: ActionRequest, reviewer: Any) -> CibaRequest | None:
    """The reviewer's latest device request on this action request, for the request page."""
    if not getattr(reviewer, "is_authenticated", False):
        return None
    return CibaRequest.objects.filter(action_request=action_request, reviewer=reviewer).first()
