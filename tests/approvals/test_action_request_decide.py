from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import ActionRequest
from approvals.models import ApprovalDecision
from approvals.services import DecisionRefused, action_request_decide
from audit.chain import verify
from audit.models import AuditEvent
from demo_systems.models import Customer, Refund
from tests.approvals.conftest import make_user, resume, run_to_pause

pytestmark = pytest.mark.django_db


def decide(ar, reviewer, decision="approve", comment="", params_hash=None):
    return action_request_decide(
        action_request=ar,
        reviewer=reviewer,
        decision=decision,
        comment=comment,
        params_hash=ar.params_hash if params_hash is None else params_hash,
    )


def test_it_approves_releases_and_the_session_completes(pending_refund, reviewer_alice) -> None:
    result = decide(pending_refund, reviewer_alice, comment="ok")
    assert result.status == "succeeded" and Refund.objects.count() == 1
    session = resume(result)
    assert session.status == "completed"
    event = AuditEvent.objects.get(kind="approval.decided")
    assert (event.actor, event.outcome, event.details["comment"]) == ("user:alice", "approve", "ok")
    assert verify().ok


def test_the_initiator_cannot_approve(demo, model_server, reviewer_alice) -> None:
    ar = run_to_pause("refund-bot", "refund-triage", "T-2002", "user:alice")
    with pytest.raises(DecisionRefused, match="you initiated this session"):
        decide(ar, reviewer_alice)
    assert not Refund.objects.exists()
    assert AuditEvent.objects.filter(kind="approval.refused").count() == 1


def test_the_initiator_under_another_name_cannot_approve(demo, model_server, reviewer_alice) -> None:
    ar = run_to_pause("refund-bot", "refund-triage", "T-2002", "alice@example.com")
    with pytest.raises(DecisionRefused):
        decide(ar, reviewer_alice)


def test_an_outsider_cannot_decide(pending_refund, outsider_mallory) -> None:
    with pytest.raises(DecisionRefused, match="not a reviewer"):
        decide(pending_refund, outsider_mallory)


def test_a_stale_hash_cannot_approve(pending_refund, reviewer_alice) -> None:
    with pytest.raises(DecisionRefused, match="parameters changed"):
        decide(pending_refund, reviewer_alice, params_hash="0" * 64)
    assert not ApprovalDecision.objects.exists() and not Refund.objects.exists()


def test_quorum_needs_distinct_reviewers(demo, model_server, reviewer_alice, reviewer_bob) -> None:
    ar = run_to_pause("support-bot", "account-maintenance", "raise the limit", "user:dana")
    assert ar.quorum == 2
    assert decide(ar, reviewer_alice).status == "awaiting_approval"
    with pytest.raises(DecisionRefused, match="already decided"):
        decide(ar, reviewer_alice)
    assert Customer.objects.get(id="C-1001").credit_limit == 5000
    assert decide(ar, reviewer_bob).status == "succeeded"
    assert Customer.objects.get(id="C-1001").credit_limit == 7500


def test_a_rejection_needs_a_comment_and_tells_the_agent_why(pending_refund, reviewer_alice) -> None:
    with pytest.raises(DecisionRefused, match="needs a comment"):
        decide(pending_refund, reviewer_alice, "reject", "  ")
    result = decide(pending_refund, reviewer_alice, "reject", "Refund the EUR 40 only, not 250.")
    assert result.status == "rejected" and not Refund.objects.exists()
    session = resume(result)
    assert session.status == "completed"  # refund-triage continues after a rejection
    told = [json.dumps(m) for m in ActionRequest.objects.filter(pk=result.pk).values_list("error", flat=True)]
    assert "Refund the EUR 40 only" in told[0]


def test_a_rejection_ends_the_session_when_the_workflow_says_so(demo, model_server, reviewer_alice) -> None:
    ar = run_to_pause("support-bot", "account-maintenance", "raise", "user:dana")
    decide(ar, reviewer_alice, "reject", "No limit changes this week.")
    ar.session.refresh_from_db()
    assert (ar.session.status, ar.session.termination_reason) == ("terminated", "tier 3 action rejected")


def test_an_expired_request_cannot_be_approved(pending_refund, reviewer_alice) -> None:
    ActionRequest.objects.filter(pk=pending_refund.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(DecisionRefused, match="expired"):
        decide(pending_refund, reviewer_alice)
    assert not Refund.objects.exists()


def test_a_decided_request_takes_no_second_outcome(pending_refund, reviewer_alice, reviewer_bob) -> None:
    decide(pending_refund, reviewer_alice)
    with pytest.raises(DecisionRefused, match="already succeeded"):
        decide(pending_refund, reviewer_bob, "reject", "too late")
    assert Refund.objects.count() == 1


def test_recent_sign_in_can_be_required(pending_refund, reviewer_alice, settings) -> None:
    settings.WARDEN_APPROVAL_MAX_AUTH_AGE = 300
    old = {"warden_auth": {"auth_time": timezone.now().timestamp() - 3600, "amr": ["pwd"]}}
    with pytest.raises(DecisionRefused, match="recent sign-in"):
        action_request_decide(
            action_request=pending_refund,
            reviewer=reviewer_alice,
            decision="approve",
            comment="",
            params_hash=pending_refund.params_hash,
            auth_session=old,
        )
    fresh = {"warden_auth": {"auth_time": timezone.now().timestamp(), "amr": ["pwd", "mfa"]}}
    result = action_request_decide(
        action_request=pending_refund,
        reviewer=reviewer_alice,
        decision="approve",
        comment="",
        params_hash=pending_refund.params_hash,
        auth_session=fresh,
    )
    assert result.status == "succeeded"
    assert AuditEvent.objects.get(kind="approval.decided").details["amr"] == ["pwd", "mfa"]


def test_make_user_roles_are_groups(db) -> None:
    user = make_user("zed", "reviewer", "security")
    assert sorted(user.groups.values_list("name", flat=True)) == ["reviewer", "security"]
