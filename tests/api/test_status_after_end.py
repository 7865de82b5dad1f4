"""A runtime polls the status of its call while a reviewer decides (README, The decision API).
When the rejection ends the session (on_reject handoff or end), the runtime must still read
what became of its call, and that read is not a revoked-token alarm; the ended token does
nothing else."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from agents.models import ActionRequest, SecurityAlert
from approvals.services import action_request_decide
from governance.models import Workflow
from tests.api.conftest import bearer
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db

REFUND = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "duplicate"}


@pytest.mark.parametrize("on_reject", ["handoff", "end"])
def test_a_runtime_reads_the_rejection_that_ended_its_session_without_an_alert(start, on_reject) -> None:
    Workflow.objects.filter(name="refund-triage").update(on_reject=on_reject)
    started = start()
    client = bearer(APIClient(), started["token"])
    answer = client.post(
        "/api/v1/authorize", {"action": "crm.issue_refund", "params": REFUND, "tool_use_id": "t1"}, format="json"
    ).json()
    assert answer["decision"] == "pending_approval", answer
    ar = ActionRequest.objects.get(pk=answer["action_request_id"])
    action_request_decide(
        action_request=ar,
        reviewer=make_user("alice", "reviewer"),
        decision="reject",
        comment="wrong amount",
        params_hash=ar.params_hash,
    )
    status = client.get(f"/api/v1/actions/{ar.pk}")
    assert status.status_code == 200, status.content
    assert (status.json()["status"], status.json()["decided_reason"]) == ("rejected", "wrong amount")
    assert not SecurityAlert.objects.filter(kind=SecurityAlert.Kind.REVOKED_TOKEN).exists()
    # The token reads; it does not act.
    again = client.post(
        "/api/v1/authorize", {"action": "crm.get_customer", "params": {"customer_id": "C-1002"}}, format="json"
    )
    assert again.status_code == 401
    assert SecurityAlert.objects.filter(kind=SecurityAlert.Kind.REVOKED_TOKEN).count() == 1
