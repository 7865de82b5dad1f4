"""Recovery with real worker processes on Redis and PostgreSQL: a session approved at tier 3
whose worker is SIGKILLed while it holds `resume_session`, before the task's claim, is
restarted by the sweep (not by Redis redelivery) and completes with every effect applied once."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents import gateway
from agents.models import AgentSession
from agents.services import session_queue_run
from audit.chain import verify
from demo_systems.models import Comment, IdempotencyRecord, Note, Refund
from tests.agents.test_worker_integration import (  # noqa: F401 - fixtures
    Worker,
    broker,
    wait_for,
    worker_env,
)

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def hold_lock(tmp_path) -> Iterator[Path]:
    """A lock the test holds: the held worker blocks on it before the task body runs."""
    path = tmp_path / "resume.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield path
    # Closing the file releases the lock (a worker that is still blocked would go on).


def test_an_approved_session_whose_worker_dies_before_the_resume_claim_completes(
    demo, worker_env, tmp_path, hold_lock
) -> None:
    # Redis would bring the unacknowledged message back only after the visibility timeout: make
    # that an hour, so that what restarts the session within the test can only be the sweep.
    env = {**worker_env, "CELERY_VISIBILITY_TIMEOUT": "3600"}
    lease, sweep = int(env["WARDEN_RUNNER_LEASE_SECONDS"]), int(env["WARDEN_SWEEP_SECONDS"])
    held = Worker(
        {**env, "WARDEN_TEST_HOLD_TASK": "agents.tasks.resume_session", "WARDEN_TEST_HOLD_LOCK": str(hold_lock)},
        tmp_path / "held.log",
    )
    held.start("--include", "tests.agents.worker_hooks")
    rescuer = Worker(env, tmp_path / "rescuer.log")
    try:
        session = session_queue_run(
            agent="refund-bot", workflow="refund-triage", input="Handle T-2002", trigger="test", initiated_by="u:a"
        )
        wait_for(lambda: status_of(session) == "awaiting_approval", 60, "the session to pause at tier 3")
        ar = session.action_requests.get(status="awaiting_approval")
        assert gateway.release(ar).status == "succeeded"  # the refund runs here, in the approver's process
        marker = Path(f"{hold_lock}.held")
        wait_for(marker.exists, 30, "the worker to hold resume_session")
        assert json.loads(marker.read_text()) == [str(session.pk), str(ar.pk)]
        held.kill()
        stranded = AgentSession.objects.get(pk=session.pk)
        assert (stranded.status, stranded.run_state) == ("active", "paused")  # killed before its claim
        rescuer.start("--beat", "--schedule", str(tmp_path / "beat-schedule"))
        # From the worker's start: one sweep interval plus the lease, with room for the run itself.
        wait_for(lambda: status_of(session) != "active", sweep + lease + 30, "the sweep to restart the session")
    finally:
        held.kill()
        rescuer.stop()
    session.refresh_from_db()
    assert session.status == "completed", list(session.handoffs.values_list("trigger", flat=True))
    assert f"sweep: session {session.pk} was decided but not resumed" in rescuer.log.read_text()
    assert Refund.objects.count() == 1 and Note.objects.count() == 1 and Comment.objects.count() == 1
    writes = session.action_requests.filter(tier__gte=2)
    assert sorted(writes.values_list("action", "status")) == [
        ("crm.add_note", "succeeded"),
        ("crm.issue_refund", "succeeded"),
        ("ticketing.add_comment", "succeeded"),
    ]
    assert set(IdempotencyRecord.objects.values_list("key", flat=True)) == {
        str(pk) for pk in writes.values_list("pk", flat=True)
    }
    result = verify()
    assert result.ok, result.message


def status_of(session: AgentSession) -> str:
    return AgentSession.objects.get(pk=session.pk).status
