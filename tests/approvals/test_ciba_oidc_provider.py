"""Approval on the reviewer's device end to end against the real oidc-provider with its CIBA
feature on (tests/oidc/provider.mjs with CIBA=1): real HTTP to its discovery, backchannel,
token and JWKS endpoints, the test "device" confirming or denying, and the real Celery task
(run eagerly, as the browser tests run tasks) polling the token endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jwt
import pytest

from agents.models import ActionRequest
from approvals import ciba
from approvals.models import ApprovalDecision, CibaRequest
from audit.models import AuditEvent
from demo_systems.models import Customer, Refund
from tests.approvals.ciba_idp import (  # noqa: F401 (fixtures)
    answer_on_device,
    ciba_idp,
    ciba_settings,
    device,
    eager,
    known_at,
    poll_until_done,
)
from tests.approvals.conftest import run_to_pause

pytestmark = pytest.mark.django_db


def start(ar: ActionRequest, reviewer: Any, capture: Callable[..., Any]) -> CibaRequest:
    with capture(execute=True):  # the first poll runs (eagerly) once the request is committed
        cr = ciba.ciba_request_start(action_request=ar, reviewer=reviewer, params_hash=ar.params_hash)
    cr.refresh_from_db()
    return cr


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
