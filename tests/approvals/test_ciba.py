"""Approval on the reviewer's device (approvals/ciba.py) against a scripted identity provider:
what is sent, how the poll follows the IdP's answers, and every token that must not approve.
The same flow against the real oidc-provider is in test_ciba_oidc_provider.py."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from agents.models import ActionRequest
from approvals import ciba
from approvals.models import ApprovalDecision, CibaRequest
from approvals.services import action_request_decide
from audit.models import AuditEvent
from demo_systems.models import Customer, Refund
from governance.models import ExternalIdentity
from governance.roles import set_roles
from tests.approvals.conftest import run_to_pause

pytestmark = pytest.mark.django_db

ISSUER = "https://idp.test"
META = {
    "issuer": ISSUER,
    "backchannel_authentication_endpoint": f"{ISSUER}/backchannel",
    "token_endpoint": f"{ISSUER}/token",
    "jwks_uri": f"{ISSUER}/jwks",
    "backchannel_token_delivery_modes_supported": ["poll"],
}
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PENDING = (400, {"error": "authorization_pending"})


class ScriptedIdP:
    """Stands in for ciba._http: discovery, the backchannel endpoint and the token endpoint."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str] | None]] = []
        self.headers: list[dict[str, str]] = []
        self.backchannel: Any = (200, {"auth_req_id": "req-1", "expires_in": 120})
        self.tokens: list[Any] = []

    def __call__(self, url: str, form: Any = None, headers: Any = None) -> tuple[int, dict[str, Any]]:
        self.calls.append((url, form))
        self.headers.append(headers or {})
        if url.endswith("/.well-known/openid-configuration"):
            return 200, META
        answer = self.backchannel if url == META["backchannel_authentication_endpoint"] else self.tokens.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def token_calls(self) -> int:
        return sum(1 for url, _ in self.calls if url == META["token_endpoint"])


@pytest.fixture
def idp(settings, monkeypatch) -> ScriptedIdP:
    settings.WARDEN_CIBA_ENABLED = True
    settings.WARDEN_CIBA_ISSUER = ISSUER
    settings.WARDEN_CIBA_CLIENT_ID = "warden"
    settings.WARDEN_CIBA_CLIENT_SECRET = "warden-secret"
    settings.WARDEN_CIBA_LOGIN_HINT = "sub"
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    fake = ScriptedIdP()
    monkeypatch.setattr(ciba, "_http", fake)
    monkeypatch.setattr(ciba, "_signing_key", lambda uri, token: KEY.public_key())
    ciba._discovered.clear()
    return fake


def at_idp(user: Any, subject: str) -> Any:
    ExternalIdentity.objects.create(user=user, issuer=ISSUER, subject=subject)
    return user


@pytest.fixture
def alice(reviewer_alice) -> Any:
    return at_idp(reviewer_alice, "alice-sub")


def start(ar: ActionRequest, reviewer: Any, params_hash: str | None = None) -> CibaRequest:
    return ciba.ciba_request_start(
        action_request=ar, reviewer=reviewer, params_hash=ar.params_hash if params_hash is None else params_hash
    )


def due(cr: CibaRequest) -> CibaRequest:
    """Let the interval pass (the IdP asked for it; the test does not wait it out)."""
    CibaRequest.objects.filter(pk=cr.pk).update(next_poll_at=timezone.now() - timedelta(seconds=1))
    cr.refresh_from_db()
    return cr


def poll(cr: CibaRequest) -> Any:
    result = ciba.ciba_request_poll(cr.pk, due(cr).polls)
    cr.refresh_from_db()
    return result


def id_token(cr: CibaRequest, key: Any = KEY, algorithm: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER,
        "sub": cr.subject,
        "aud": "warden",
        "iat": now,
        "exp": now + 300,
        "auth_time": now,
        "nonce": cr.nonce,
        "amr": ["pwd", "mfa"],
        "acr": "urn:warden:mfa",
        **claims,
    }
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm)


# --- the binding message --------------------------------------------------------------------


@given(
    action=st.text(min_size=1, max_size=80),
    params_hash=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    limit=st.integers(min_value=8, max_value=128),
)
def test_the_binding_message_always_fits_the_idp_and_names_the_hash(action: str, params_hash: str, limit: int) -> None:
    message = ciba.binding_message(action, params_hash, limit)
    assert re.fullmatch(r"[A-Za-z0-9._+#-]{1,%d}" % limit, message)
    assert message.endswith("#" + params_hash[:6]) or message.endswith("#" + params_hash[:8])


def test_the_binding_message_names_the_action() -> None:
    assert ciba.binding_message("crm.issue_refund", "3fa9c1" + "0" * 58, 20) == "issue_refund#3fa9c1"
    assert ciba.binding_message("crm.issue_refund", "3fa9c1d2" + "0" * 56, 64) == "crm.issue_refund#3fa9c1d2"


# --- starting -------------------------------------------------------------------------------


def test_it_asks_the_idp_for_this_reviewer_with_the_binding_message(pending_refund, alice, idp) -> None:
    cr = start(pending_refund, alice)
    url, form = idp.calls[-1]
    assert url == META["backchannel_authentication_endpoint"]
    assert form["login_hint"] == "alice-sub" and form["scope"] == "openid"
    assert form["binding_message"] == cr.binding_message == ciba.binding_message("crm.issue_refund", cr.params_hash)
    assert form["nonce"] == cr.nonce and form["client_id"] == "warden" and form["client_secret"] == "warden-secret"
    remaining = (pending_refund.expires_at - timezone.now()).total_seconds()
    assert 0 < int(form["requested_expiry"]) <= remaining
    assert (cr.status, cr.auth_req_id, cr.subject) == ("pending", "req-1", "alice-sub")
    event = AuditEvent.objects.get(kind="approval.ciba_requested")
    assert event.actor == "user:alice" and event.details["binding_message"] == cr.binding_message
    assert "req-1" not in str(event.details)  # the auth_req_id fetches tokens: never in the trail


def test_it_can_authenticate_with_basic_auth(pending_refund, alice, idp, settings) -> None:
    settings.WARDEN_CIBA_CLIENT_AUTH = "client_secret_basic"
    start(pending_refund, alice)
    assert "client_secret" not in idp.calls[-1][1]
    assert idp.headers[-1]["Authorization"] == "Basic d2FyZGVuOndhcmRlbi1zZWNyZXQ="  # warden:warden-secret


def test_it_is_off_unless_enabled(pending_refund, alice, idp, settings) -> None:
    settings.WARDEN_CIBA_ENABLED = False
    with pytest.raises(ciba.Refused, match="not configured"):
        start(pending_refund, alice)
    assert not idp.calls


def test_the_initiator_cannot_ask_their_device_either(demo, model_server, alice, idp) -> None:
    ar = run_to_pause("refund-bot", "refund-triage", "T-2002", "oidc:alice-sub")
    with pytest.raises(ciba.Refused, match="you initiated this session"):
        start(ar, alice)
    assert not idp.calls and not CibaRequest.objects.exists()
    assert AuditEvent.objects.filter(kind="approval.refused").count() == 1


def test_an_outsider_cannot_ask(pending_refund, outsider_mallory, idp) -> None:
    with pytest.raises(ciba.Refused, match="not a reviewer"):
        start(pending_refund, at_idp(outsider_mallory, "mallory-sub"))
    assert not idp.calls


def test_a_reviewer_unknown_to_the_idp_is_told_to_sign_in_once(pending_refund, reviewer_alice, idp) -> None:
    with pytest.raises(ciba.Refused, match="sign in to Warden through the identity provider once"):
        start(pending_refund, reviewer_alice)
    assert not any(form for _, form in idp.calls)


def test_a_stale_page_cannot_ask(pending_refund, alice, idp) -> None:
    with pytest.raises(ciba.Refused, match="parameters changed"):
        start(pending_refund, alice, params_hash="0" * 64)


def test_one_request_at_a_time_per_reviewer(pending_refund, alice, idp) -> None:
    start(pending_refund, alice)
    with pytest.raises(ciba.Refused, match="already waiting"):
        start(pending_refund, alice)
    assert CibaRequest.objects.count() == 1


def test_the_idps_refusal_is_reported_and_audited(pending_refund, alice, idp) -> None:
    idp.backchannel = (400, {"error": "unknown_user_id", "error_description": "could not identify end-user"})
    with pytest.raises(ciba.Refused, match="unknown_user_id"):
        start(pending_refund, alice)
    assert not CibaRequest.objects.exists()
    assert AuditEvent.objects.get(kind="approval.ciba_failed").outcome == "failed"


def test_an_unreachable_idp_is_a_clear_error(pending_refund, alice, idp) -> None:
    idp.backchannel = ciba.Unreachable("connection refused")
    with pytest.raises(ciba.Refused, match="could not be reached"):
        start(pending_refund, alice)


def test_an_idp_without_poll_mode_is_refused(pending_refund, alice, idp, monkeypatch) -> None:
    monkeypatch.setitem(META, "backchannel_token_delivery_modes_supported", ["ping"])
    with pytest.raises(ciba.Refused, match="poll mode"):
        start(pending_refund, alice)


def test_email_as_login_hint_needs_the_verified_email_in_the_token(pending_refund, reviewer_alice, idp, settings):
    settings.WARDEN_CIBA_LOGIN_HINT = "email"
    cr = start(pending_refund, reviewer_alice)
    assert idp.calls[-1][1]["login_hint"] == "alice@example.com" and cr.subject == ""
    idp.tokens = [(200, {"id_token": id_token(cr, sub="whoever", email="alice@example.com", email_verified=False)})]
    poll(cr)
    assert cr.status == "failed" and "verified email" in cr.reason and not ApprovalDecision.objects.exists()


# --- polling --------------------------------------------------------------------------------


def test_it_waits_the_interval_and_slows_down_when_told(pending_refund, alice, idp) -> None:
    cr = start(pending_refund, alice)
    idp.tokens = [PENDING, (400, {"error": "slow_down"})]
    assert poll(cr) == (5.0, 1)
    assert ciba.ciba_request_poll(cr.pk, 1)[1] == 1 and idp.token_calls() == 1  # too early: no call
    assert poll(cr) == (10.0, 2) and cr.interval == 10
    assert cr.next_poll_at > timezone.now() + timedelta(seconds=9)


def test_a_stale_or_redelivered_task_does_nothing(pending_refund, alice, idp) -> None:
    cr = start(pending_refund, alice)
    idp.tokens = [PENDING]
    poll(cr)
    assert ciba.ciba_request_poll(cr.pk, 0) is None and idp.token_calls() == 1


def test_an_idp_outage_is_retried_until_the_deadline(pending_refund, alice, idp) -> None:
    cr = start(pending_refund, alice)
    idp.tokens = [ciba.Unreachable("down"), (503, {}), PENDING]
    for _ in range(3):
        assert poll(cr) is not None and cr.status == "pending"
    CibaRequest.objects.filter(pk=cr.pk).update(expires_at=timezone.now())
    assert poll(cr) is None and cr.status == "expired"
    assert idp.token_calls() == 3 and AuditEvent.objects.filter(kind="approval.ciba_expired").count() == 1
    assert ActionRequest.objects.get(pk=pending_refund.pk).status == "awaiting_approval"


def test_an_expired_token_at_the_idp_decides_nothing(pending_refund, alice, idp) -> None:
    cr = start(pending_refund, alice)
    idp.tokens = [(400, {"error": "expired_token"})]
    assert poll(cr) is None and cr.status == "expired"
    assert not ApprovalDecision.objects.exists()
    assert ActionRequest.objects.get(pk=pending_refund.pk).status == "awaiting_approval"


def test_another_idp_error_fails_closed(pending_refund, alice, idp) -> None:
    cr = start(pending_refund, alice)
    idp.tokens = [(400, {"error": "invalid_grant"})]
    assert poll(cr) is None and cr.status == "failed" and "invalid_grant" in cr.reason
    assert not ApprovalDecision.objects.exists() and not Refund.objects.exists()


def test_a_confirmation_approves_through_the_same_service_with_the_token_as_proof(pending_refund, alice, idp) -> None:
    cr = start(pending_refund, alice)
    token = id_token(cr)
    idp.tokens = [PENDING, (200, {"id_token": token, "access_token": "at"})]
    poll(cr)
    assert poll(cr) is None and cr.status == "approved" and cr.id_token == token
    ar = ActionRequest.objects.get(pk=pending_refund.pk)
    assert ar.status == "succeeded" and Refund.objects.count() == 1
    decision = ApprovalDecision.objects.get()
    assert (decision.reviewer, decision.decision, decision.params_hash) == (alice, "approve", ar.params_hash)
    assert decision.auth_context["method"] == "ciba" and decision.auth_context["id_token"] == token
    assert decision.auth_context["amr"] == ["pwd", "mfa"] and decision.auth_context["sub"] == "alice-sub"
    event = AuditEvent.objects.get(kind="approval.decided")
    assert event.details["method"] == "ciba" and len(event.details["id_token_sha256"]) == 64
    assert "id_token" not in event.details


def test_a_denial_on_the_device_is_the_reviewers_rejection(pending_refund, alice, idp) -> None:
    cr = start(pending_refund, alice)
    idp.tokens = [(400, {"error": "access_denied"})]
    assert poll(cr) is None and cr.status == "denied"
    ar = ActionRequest.objects.get(pk=pending_refund.pk)
    assert ar.status == "rejected" and not Refund.objects.exists()
    decision = ApprovalDecision.objects.get()
    assert (decision.reviewer, decision.decision, decision.comment) == (alice, "reject", ciba.DENIED_COMMENT)
    assert AuditEvent.objects.get(kind="approval.decided").outcome == "reject"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"sub": "mallory-sub"}, "another person"),
        ({"aud": "other-client"}, "another client"),
        ({"aud": ["warden", "other-client"]}, "another client"),
        ({"iss": "https://evil.test"}, "another issuer"),
        ({"iat": int(time.time()) - 900, "exp": int(time.time()) - 300}, "expired"),
        ({"iat": int(time.time()) - 3600}, "before this request"),
        ({"auth_time": int(time.time()) - 3600}, "before this request"),
        ({"nonce": "another-request"}, "another request"),
        ({ciba.AUTH_REQ_ID_CLAIM: "another-req"}, "another request"),
        ({"exp": None}, "not valid"),
        ({"key": OTHER_KEY}, "not valid"),
        ({"algorithm": "HS256", "key": "warden-secret-but-long-enough-for-hmac"}, "not signed with RS256"),
    ],
)
def test_a_token_that_does_not_prove_this_approval_decides_nothing(pending_refund, alice, idp, claims, reason) -> None:
    cr = start(pending_refund, alice)
    claims = dict(claims)
    key, algorithm = claims.pop("key", KEY), claims.pop("algorithm", "RS256")
    idp.tokens = [(200, {"id_token": id_token(cr, key=key, algorithm=algorithm, **claims)})]
    assert poll(cr) is None
    assert cr.status == "failed" and reason in cr.reason, cr.reason
    assert not ApprovalDecision.objects.exists() and not Refund.objects.exists()
    assert ActionRequest.objects.get(pk=pending_refund.pk).status == "awaiting_approval"
    assert AuditEvent.objects.get(kind="approval.ciba_failed").details["reason"] == cr.reason


def test_a_response_without_an_id_token_decides_nothing(pending_refund, alice, idp) -> None:
    cr = start(pending_refund, alice)
    idp.tokens = [(200, {"access_token": "at"})]
    poll(cr)
    assert cr.status == "failed" and not ApprovalDecision.objects.exists()


def test_the_decision_is_taken_again_when_the_device_answers(pending_refund, alice, idp) -> None:
    """A reviewer who lost the role while their phone was in their pocket approves nothing."""
    cr = start(pending_refund, alice)
    set_roles(alice, set())
    idp.tokens = [(200, {"id_token": id_token(cr)})]
    poll(cr)
    assert cr.status == "failed" and "not a reviewer" in cr.reason and not Refund.objects.exists()


def test_an_expired_request_cannot_be_approved_on_the_device(pending_refund, alice, idp) -> None:
    cr = start(pending_refund, alice)
    ActionRequest.objects.filter(pk=pending_refund.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    idp.tokens = [(200, {"id_token": id_token(cr)})]
    poll(cr)
    assert cr.status == "failed" and "expired" in cr.reason and not Refund.objects.exists()


def test_a_request_decided_meanwhile_ends_the_device_request(pending_refund, alice, reviewer_bob, idp) -> None:
    cr = start(pending_refund, alice)
    action_request_decide(
        action_request=pending_refund,
        reviewer=reviewer_bob,
        decision="reject",
        comment="no",
        params_hash=cr.params_hash,
    )
    assert poll(cr) is None and cr.status == "expired" and idp.token_calls() == 0


def test_quorum_holds_a_device_approval_counts_once(demo, model_server, alice, reviewer_bob, idp) -> None:
    ar = run_to_pause("support-bot", "account-maintenance", "raise the limit", "user:dana")
    assert ar.quorum == 2
    cr = start(ar, alice)
    idp.tokens = [(200, {"id_token": id_token(cr)})]
    poll(cr)
    assert cr.status == "approved"
    assert ActionRequest.objects.get(pk=ar.pk).status == "awaiting_approval"
    assert Customer.objects.get(id="C-1001").credit_limit == 5000
    with pytest.raises(ciba.Refused, match="already decided"):
        start(ar, alice)
    action_request_decide(
        action_request=ar, reviewer=reviewer_bob, decision="approve", comment="", params_hash=ar.params_hash
    )
    assert Customer.objects.get(id="C-1001").credit_limit == 7500


def test_the_sweep_picks_up_a_lost_polling_task(pending_refund, alice, idp, monkeypatch) -> None:
    cr = start(pending_refund, alice)
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(ciba, "enqueue_poll", lambda pk, polls, countdown=0: sent.append((pk, polls)))
    assert ciba.ciba_request_sweep() == 0
    CibaRequest.objects.filter(pk=cr.pk).update(next_poll_at=timezone.now() - timedelta(minutes=5))
    assert ciba.ciba_request_sweep() == 1 and sent == [(cr.pk, 0)]


def test_the_task_polls_and_reschedules_itself(pending_refund, alice, idp, monkeypatch) -> None:
    from approvals import tasks

    cr = start(pending_refund, alice)
    idp.tokens = [PENDING]
    scheduled: list[Any] = []
    monkeypatch.setattr(
        tasks.ciba_request_poll, "apply_async", lambda args, countdown: scheduled.append((args, countdown))
    )
    tasks.ciba_request_poll.run(cr.pk, 0)
    assert scheduled == [((cr.pk, 1), 5.0)]


# --- any order of answers from the IdP ------------------------------------------------------

ANSWERS = {
    "pending": lambda cr: PENDING,
    "slow_down": lambda cr: (400, {"error": "slow_down"}),
    "outage": lambda cr: (502, {}),
    "denied": lambda cr: (400, {"error": "access_denied"}),
    "expired": lambda cr: (400, {"error": "expired_token"}),
    "good": lambda cr: (200, {"id_token": id_token(cr)}),
    "other_sub": lambda cr: (200, {"id_token": id_token(cr, sub="mallory-sub")}),
    "other_key": lambda cr: (200, {"id_token": id_token(cr, key=OTHER_KEY)}),
}


@hsettings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=st.lists(st.sampled_from(sorted(ANSWERS)), min_size=1, max_size=6))
def test_only_a_verified_token_approves_whatever_the_idp_answers(pending_refund, alice, idp, answers) -> None:
    with transaction.atomic():
        cr = start(pending_refund, alice)
        idp.tokens = [ANSWERS[name](cr) for name in answers]
        interval = cr.interval
        for _ in answers:
            if poll(cr) is None:
                break
            assert cr.interval >= interval  # never faster than the IdP allows
            interval = cr.interval
        first_final = next((a for a in answers if a not in ("pending", "slow_down", "outage")), None)
        status = ActionRequest.objects.get(pk=pending_refund.pk).status
        expected = {
            None: ("pending", "awaiting_approval"),
            "good": ("approved", "succeeded"),
            "denied": ("denied", "rejected"),
            "expired": ("expired", "awaiting_approval"),
        }.get(first_final, ("failed", "awaiting_approval"))
        assert (cr.status, status) == expected
        assert Refund.objects.count() == (1 if first_final == "good" else 0)
        transaction.set_rollback(True)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WARDEN_CIBA_ENABLED": "1"}, "WARDEN_CIBA_ENABLED is set but the IdP is not"),
        ({"WARDEN_CIBA_LOGIN_HINT": "phone"}, "WARDEN_CIBA_LOGIN_HINT must be sub or email"),
    ],
)
def test_a_half_configured_ciba_stops_start_up(env: dict[str, str], message: str, tmp_path) -> None:
    from tests.test_settings import manage

    result = manage(
        "check",
        DJANGO_SETTINGS_MODULE="config.test_settings",
        OIDC_OP_ISSUER="",
        OIDC_RP_CLIENT_ID="",
        OIDC_RP_CLIENT_SECRET="",
        WARDEN_DATA_DIR=str(tmp_path),
        **env,
    )
    assert result.returncode != 0 and message in result.stderr, result.stderr
