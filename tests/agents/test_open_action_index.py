"""The queries that look for open actions (the sweeper of expired approvals, the approval queue,
the recovery of approved actions) have an index, and it holds open actions only, so that a
tier 1 call's row enters none of it (decision 0022)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from agents.models import ActionRequest

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

Status = ActionRequest.Status


def test_the_index_holds_open_actions_only() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'agents_actionrequest'")
        indexes = dict(cursor.fetchall())
    definition = indexes["action_open_expiry"]
    assert "(status, expires_at)" in definition and "awaiting_approval" in definition and "approved" in definition
    assert "allowed" not in definition.split("WHERE", 1)[1], definition
    assert "action_status_expiry" not in indexes


@pytest.mark.parametrize(
    "query",
    [
        lambda: ActionRequest.objects.filter(status=Status.AWAITING_APPROVAL, expires_at__lt=timezone.now()),
        lambda: ActionRequest.objects.filter(status=Status.AWAITING_APPROVAL),
        lambda: ActionRequest.objects.filter(status=Status.APPROVED, updated_at__lt=timezone.now()),
    ],
    ids=["expired approvals (the sweeper)", "the approval queue", "approved actions to recover"],
)
def test_the_open_action_queries_use_it(query) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the table is tiny: ask what could be used
        plan = query().explain()
    assert "action_open_expiry" in plan, plan


@pytest.mark.parametrize("outcome", ["", "rejected"])
def test_the_reviewers_history_uses_its_own_index(outcome: str) -> None:
    """approvals' history: decided tier 3 requests, newest first, optionally by outcome."""
    history = ActionRequest.objects.filter(tier=3).exclude(status=Status.AWAITING_APPROVAL)
    if outcome:
        history = history.filter(status=outcome)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = history.order_by("-created_at")[:25].explain()
    assert "action_reviewed_newest" in plan, plan
