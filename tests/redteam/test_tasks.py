"""Forged and duplicated Celery messages (README, Operating: "every task claims its work in the
database with a conditional update, so a message delivered twice does nothing the second
time"; "sessions driven by the decision API or an external runtime are never restarted")."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from agents import tasks
from agents.models import ActionRequest, AgentSession
from approvals.services import action_request_decide
from tests.api.conftest import bearer
from tests.approvals.conftest import make_user

pytestmark = pytest.mark.django_db

REFUND = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "duplicate"}


def test_a_forged_finish_release_does_not_hand_off_an_api_session_whose_runtime_holds_the_approval(start) -> None:
    """An API session's approved action is the runtime's to execute. The sweep leaves such
    actions alone (it excludes run state `api`), but the task itself does not check: one forged
    or duplicated `finish_release` message cancels the approved action and hands the session to
    a person, though nobody's release died."""
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
        decision="approve",
        comment="",
        params_hash=ar.params_hash,
    )
    assert ActionRequest.objects.get(pk=ar.pk).status == "approved"

    tasks.finish_release(str(ar.pk))  # forged: nobody's release died

    session = AgentSession.objects.get(pk=started["session_id"])
    assert session.status == AgentSession.Status.ACTIVE, (
        f"the session was {session.status}: {session.termination_reason}"
    )
    assert ActionRequest.objects.get(pk=ar.pk).status == "approved"
