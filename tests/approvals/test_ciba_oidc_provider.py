"""Approval on the reviewer's device end to end against the real oidc-provider with its CIBA
feature on (tests/oidc/provider.mjs with CIBA=1): real HTTP to its discovery, backchannel,
token and JWKS endpoints, the test "device" confirming or denying, and the real Celery task
(run eagerly, as the browser tests run tasks) polling the token endpoint."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
import requests

from agents.models import ActionRequest
from approvals import ciba
from approvals.models import ApprovalDecision, CibaRequest
from approvals.tasks import ciba_request_poll as ciba_request_poll_task
from audit.models import AuditEvent
from config.celery import app as celery_app
from demo_systems.models import Customer, Refund
from governance.models import ExternalIdentity
from tests.approvals.conftest import run_to_pause
from tests.e2e.conftest import OIDC_DIR, USERS, _free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def ciba_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    node = shutil.which("node")
    if node is None or not (OIDC_DIR / "node_modules" / "oidc-provider").exists():
        pytest.fail("the OIDC provider needs node and `npm ci` in tests/oidc (bin/test does both)")
    folder = tmp_path_factory.mktemp("ciba-idp")
    users, log = folder / "users.json", folder / "provider.log"
    users.write_text(__import__("json").dumps(USERS))
    port = _free_port()
    live = f"http://127.0.0.1:{os.environ.get('WARDEN_E2E_PORT', '8931')}"
    proc = subprocess.Popen(
        [node, "provider.mjs"],
        cwd=OIDC_DIR,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "CIBA": "1",
            "PORT": str(port),
            "USERS_FILE": str(users),
            "REDIRECT_URIS": f"{live}/oidc/callback/",
            "POST_LOGOUT_REDIRECT_URIS": f"{live}/accounts/login/",
        },
    )
    deadline = time.monotonic() + 30
    while b"listening" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the OIDC provider did not start:\n{log.read_text()}")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def ciba_settings(settings, ciba_idp: str) -> Any:
    settings.WARDEN_CIBA_ENABLED = True
    settings.WARDEN_CIBA_ISSUER = ciba_idp
    settings.WARDEN_CIBA_CLIENT_ID = "warden"
    settings.WARDEN_CIBA_CLIENT_SECRET = "warden-secret"
    settings.WARDEN_CIBA_CLIENT_AUTH = "client_secret_post"
    settings.WARDEN_CIBA_LOGIN_HINT = "sub"
    settings.WARDEN_CIBA_DEFAULT_INTERVAL = 1  # the provider names no interval; 5 s would only slow the tests
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    ciba._discovered.clear()
    return settings


@pytest.fixture
def eager() -> Iterator[None]:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def known_at(idp: str, user: Any, subject: str) -> Any:
    """What a first browser sign-in through the IdP leaves behind (governance.oidc)."""
    ExternalIdentity.objects.get_or_create(user=user, issuer=idp, subject=subject)
    return user


def device(idp: str, user: str) -> list[dict[str, str]]:
    response = requests.get(f"{idp}/test-device/{user}", timeout=5)
    response.raise_for_status()
    return response.json()


def answer_on_device(idp: str, user: str, auth_req_id: str, answer: str) -> None:
    requests.post(f"{idp}/test-device/{user}/{auth_req_id}/{answer}", timeout=5).raise_for_status()


def start(ar: ActionRequest, reviewer: Any, capture: Callable[..., Any]) -> CibaRequest:
    with capture(execute=True):  # the first poll runs (eagerly) once the request is committed
        cr = ciba.ciba_request_start(action_request=ar, reviewer=reviewer, params_hash=ar.params_hash)
    cr.refresh_from_db()
    return cr


def poll_until_done(cr: CibaRequest, timeout: float = 30) -> CibaRequest:
    """Run the polling task (eagerly) until the IdP's answer is in; a deadline, no fixed sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cr.refresh_from_db()
        if cr.status != CibaRequest.Status.PENDING:
            return cr
        ciba_request_poll_task.apply(args=(cr.pk, cr.polls))
        time.sleep(0.1)
    raise AssertionError(f"the device request is still {cr.status} after {timeout}s")


def test_a_reviewer_approves_on_their_device(
    ciba_settings, ciba_idp, eager, pending_refund, reviewer_alice, django_capture_on_commit_callbacks
) -> None:
    alice = known_at(ciba_idp, reviewer_alice, "alice")
    cr = start(pending_refund, alice, django_capture_on_commit_callbacks)
    assert cr.status == "pending" and cr.polls == 1  # polled once: authorization_pending
    shown = device(ciba_idp, "alice")
    assert [p["binding_message"] for p in shown] == [cr.binding_message]
    assert cr.binding_message == f"issue_refund#{pending_refund.params_hash[:6]}"
    answer_on_device(ciba_idp, "alice", shown[0]["auth_req_id"], "confirm")

    assert poll_until_done(cr).status == "approved", cr.reason
    ar = ActionRequest.objects.get(pk=pending_refund.pk)
    assert ar.status == "succeeded" and Refund.objects.count() == 1
    decision = ApprovalDecision.objects.get(action_request=ar)
    assert (decision.reviewer, decision.decision) == (alice, "approve")
    # The proof verifies on its own, with nothing but the IdP's published keys.
    token = decision.auth_context["id_token"]
    key = jwt.PyJWKClient(f"{ciba_idp}/jwks").get_signing_key_from_jwt(token).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience="warden", issuer=ciba_idp)
    assert (claims["sub"], claims["nonce"], claims["amr"]) == ("alice", cr.nonce, ["pwd", "mfa"])
    assert decision.auth_context["method"] == "ciba" and decision.auth_context["acr"] == "urn:warden:mfa"
    assert AuditEvent.objects.get(kind="approval.decided").details["method"] == "ciba"


def test_a_reviewer_denies_on_their_device(
    ciba_settings, ciba_idp, eager, pending_refund, reviewer_alice, django_capture_on_commit_callbacks
) -> None:
    alice = known_at(ciba_idp, reviewer_alice, "alice")
    cr = start(pending_refund, alice, django_capture_on_commit_callbacks)
    answer_on_device(ciba_idp, "alice", device(ciba_idp, "alice")[0]["auth_req_id"], "deny")
    assert poll_until_done(cr).status == "denied"
    ar = ActionRequest.objects.get(pk=pending_refund.pk)
    assert ar.status == "rejected" and not Refund.objects.exists()
    decision = ApprovalDecision.objects.get(action_request=ar)
    assert (decision.reviewer, decision.decision, decision.comment) == (alice, "reject", ciba.DENIED_COMMENT)


def test_the_initiator_cannot_approve_on_their_device(
    ciba_settings, ciba_idp, demo, model_server, reviewer_alice, django_capture_on_commit_callbacks
) -> None:
    alice = known_at(ciba_idp, reviewer_alice, "alice")
    ar = run_to_pause("refund-bot", "refund-triage", "T-2002", "oidc:alice")
    with pytest.raises(ciba.Refused, match="you initiated this session"):
        start(ar, alice, django_capture_on_commit_callbacks)
    assert device(ciba_idp, "alice") == [] and not CibaRequest.objects.exists()


def test_a_quorum_of_two_needs_two_devices(
    ciba_settings,
    ciba_idp,
    eager,
    demo,
    model_server,
    reviewer_alice,
    reviewer_bob,
    django_capture_on_commit_callbacks,
) -> None:
    ar = run_to_pause("support-bot", "account-maintenance", "raise the limit", "user:dana")
    assert ar.quorum == 2
    for name, reviewer in (("alice", reviewer_alice), ("bob", reviewer_bob)):
        cr = start(ar, known_at(ciba_idp, reviewer, name), django_capture_on_commit_callbacks)
        answer_on_device(ciba_idp, name, device(ciba_idp, name)[0]["auth_req_id"], "confirm")
        assert poll_until_done(cr).status == "approved", cr.reason
        if name == "alice":
            assert ActionRequest.objects.get(pk=ar.pk).status == "awaiting_approval"
            assert Customer.objects.get(id="C-1001").credit_limit == 5000
    assert ActionRequest.objects.get(pk=ar.pk).status == "succeeded"
    assert Customer.objects.get(id="C-1001").credit_limit == 7500


def test_no_answer_before_the_deadline_decides_nothing(
    ciba_settings, ciba_idp, eager, pending_refund, reviewer_alice, django_capture_on_commit_callbacks
) -> None:
    ciba_settings.WARDEN_CIBA_EXPIRES_SECONDS = 2
    cr = start(pending_refund, known_at(ciba_idp, reviewer_alice, "alice"), django_capture_on_commit_callbacks)
    assert poll_until_done(cr).status == "expired"
    assert not ApprovalDecision.objects.exists()
    assert ActionRequest.objects.get(pk=pending_refund.pk).status == "awaiting_approval"
    assert AuditEvent.objects.filter(kind="approval.ciba_expired").count() == 1


def test_an_unknown_reviewer_at_the_idp_is_refused_by_it(
    ciba_settings, ciba_idp, pending_refund, reviewer_alice, django_capture_on_commit_callbacks
) -> None:
    with pytest.raises(ciba.Refused, match="unknown_user_id"):
        start(pending_refund, known_at(ciba_idp, reviewer_alice, "nobody"), django_capture_on_commit_callbacks)
