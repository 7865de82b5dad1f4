"""Two releases of the same action at the same moment execute it once (PostgreSQL row locks)."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from agents import gateway, sessions
from agents.models import ActionRequest
from demo_systems.models import IdempotencyRecord, Refund

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_concurrent_release_executes_exactly_once(demo) -> None:
    _, token = sessions.start("refund-bot", "refund-triage", "test", "user:alice")
    pending = gateway.authorize(
        token, "crm.issue_refund", {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "dup"}
    )
    ar = ActionRequest.objects.get(pk=pending.action_request_id)
    start, results, errors = threading.Barrier(4), [], []

    def release() -> None:
        try:
            start.wait(timeout=10)
            results.append(gateway.release(ar).status)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=release) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert Refund.objects.count() == 1
    assert IdempotencyRecord.objects.filter(action="crm.issue_refund").count() == 1
    assert ActionRequest.objects.get(pk=ar.pk).status == "succeeded"
    assert results.count("succeeded") >= 1 and set(results) <= {"succeeded", "executing"}
