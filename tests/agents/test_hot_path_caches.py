"""The hot path's per-process caches (decision 0015) never outlive what they cache: a governance
change moves the policy version in its own transaction, and a revoked token fails at once, also
when the change is committed by another connection."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from agents import gateway, sessions
from agents.models import SessionToken
from governance import versions
from governance.models import ServiceCredential, TierAssignment

pytestmark = pytest.mark.django_db

REFUND = {"customer_id": "C-1002", "amount": 40, "currency": "EUR", "reason": "duplicate"}


def test_it_moves_the_policy_version_with_every_governance_change(demo) -> None:
    before = versions.current()
    assignment = TierAssignment.objects.get(workflow__name="refund-triage", action_type__name="crm.get_customer")
    assignment.save()
    assert versions.current() not in (None, before)


def test_it_decides_on_the_changed_policy_without_clearing_any_cache(start_session) -> None:
    session, token = start_session()
    first = gateway.authorize(token, "crm.issue_refund", REFUND, tool_use_id="t1", execute=False)
    assert first.tier == 2
    assignment = TierAssignment.objects.get(workflow__name="refund-triage", action_type__name="crm.issue_refund")
    assignment.tier = 3
    assignment.save()
    second = gateway.authorize(token, "crm.issue_refund", REFUND, tool_use_id="t2", execute=False)
    assert (second.decision, second.tier) == ("pending_approval", 3)


def test_it_reads_a_rotated_credential_at_once(start_session) -> None:
    session, token = start_session()
    assert gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, tool_use_id="t1").executed
    credential = ServiceCredential.objects.get(name="crm-api")
    credential.set_secret("a key the demo CRM does not know")
    credential.save()
    refused = gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, tool_use_id="t2")
    assert refused.status == "failed" and "refused" in refused.error


@pytest.mark.django_db(transaction=True)
def test_a_token_revoked_by_another_connection_fails_at_once(demo) -> None:
    """Two connections: this thread's, and another thread's that revokes and commits."""
    session, token = sessions.start("refund-bot", "refund-triage", "test", "user:alice", "help")
    assert gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, tool_use_id="t1").executed

    def revoke() -> None:
        try:
            SessionToken.objects.filter(session_id=session.pk).update(revoked_at=session.created_at)
        finally:
            connections.close_all()

    other = threading.Thread(target=revoke)
    other.start()
    other.join(timeout=30)
    result = gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, tool_use_id="t2")
    assert result.decision == "deny" and "revoked" in result.reason
