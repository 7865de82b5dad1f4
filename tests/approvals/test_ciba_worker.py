"""Approval on the reviewer's device with the real parts all running: a Celery worker process
on Redis and PostgreSQL that polls the real oidc-provider (CIBA on) on its own schedule,
re-scheduling itself every `interval`, and resumes the session once the device confirms."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agents.models import ActionRequest, AgentSession
from approvals import ciba
from approvals.models import CibaRequest
from audit.chain import verify
from demo_systems.models import Refund
from tests.agents.test_worker_integration import Worker, broker, wait_for, worker_env  # noqa: F401 (fixtures)
from tests.approvals.ciba_idp import answer_on_device, ciba_idp, ciba_settings, device, known_at  # noqa: F401
from tests.approvals.conftest import run_to_pause

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def ciba_worker(worker_env, ciba_settings, ciba_idp, tmp_path) -> Iterator[Worker]:
    worker_env.update(
        {
            "WARDEN_CIBA_ENABLED": "1",
            "WARDEN_CIBA_ISSUER": ciba_idp,
            "WARDEN_CIBA_CLIENT_ID": "warden",
            "WARDEN_CIBA_CLIENT_SECRET": "warden-secret",
            "WARDEN_CIBA_DEFAULT_INTERVAL": "1",
        }
    )
    w = Worker(worker_env, tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()


def test_a_worker_polls_until_the_device_confirms_and_the_session_completes(
    demo, ciba_worker, ciba_idp, reviewer_alice
) -> None:
    ar = run_to_pause("refund-bot", "refund-triage", "Handle T-2002", "user:dana")
    cr = ciba.ciba_request_start(
        action_request=ar, reviewer=known_at(ciba_idp, reviewer_alice, "alice"), params_hash=ar.params_hash
    )
    # The worker keeps polling (authorization_pending) while the reviewer reaches for the phone.
    wait_for(lambda: CibaRequest.objects.get(pk=cr.pk).polls >= 2, 30, "two polls by the worker")
    shown = device(ciba_idp, "alice")
    assert [p["binding_message"] for p in shown] == [cr.binding_message]
    answer_on_device(ciba_idp, "alice", shown[0]["auth_req_id"], "confirm")
    wait_for(lambda: CibaRequest.objects.get(pk=cr.pk).status != "pending", 30, "the worker to see the answer")
    cr.refresh_from_db()
    assert cr.status == "approved", cr.reason
    assert ActionRequest.objects.get(pk=ar.pk).status == "succeeded" and Refund.objects.count() == 1
    wait_for(lambda: AgentSession.objects.get(pk=ar.session_id).status == "completed", 60, "the session to complete")
    assert verify().ok
