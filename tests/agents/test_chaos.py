"""Chaos: real Celery workers on Redis and PostgreSQL SIGKILLed at random (seeded) while
sessions run, pause for approval and resume. Afterwards every session has completed, every
effect was applied exactly once, nothing is left `executing`, and the audit chain verifies.

Redis's visibility timeout is left at an hour (the production default), so nothing here is
saved by redelivery: what brings stranded sessions back is the sweep's rule on states.
Set WARDEN_CHAOS_SEED to replay another sequence of kills."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import yaml

from agents import gateway
from agents.model_server import serve
from agents.models import ActionRequest, AgentSession, SecurityAlert
from agents.services import session_queue_run
from audit.chain import verify
from audit.models import AuditEvent
from demo_systems.models import Comment, IdempotencyRecord, Note, Refund
from tests.agents.test_worker_integration import (  # noqa: F401 - fixtures
    ROOT,
    Worker,
    broker,
    wait_for,
    worker_env,
)

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SEED = int(os.environ.get("WARDEN_CHAOS_SEED", "16"))
KILLS = 24  # at least 20
SESSIONS = 12  # at least 10
WORKERS = 3
STEP_DELAY = 0.4  # the model's latency per step: sessions last seconds, so kills land mid-run
CHAOS_SECONDS = 100  # the bound on the killing phase; then every session must end within DRAIN_SECONDS
DRAIN_SECONDS = 90
WORKFLOWS = {
    "refund-triage": ("refund-bot", "Handle T-2002", ["crm.add_note", "crm.issue_refund", "ticketing.add_comment"]),
    "ticket-triage": ("support-bot", "Triage", ["mail.send_email", "ticketing.add_comment", "ticketing.set_status"]),
}


@pytest.fixture
def cluster(worker_env, tmp_path) -> Iterator[list[Worker]]:
    """WORKERS workers (the ones that get killed) and one beat process (never killed)."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name in WORKFLOWS:
        doc = yaml.safe_load((ROOT / "examples" / "scripts" / f"{name}.yaml").read_text())
        for step in doc["steps"]:
            step.setdefault("delay", STEP_DELAY)
        (scripts / f"{name}.yaml").write_text(yaml.safe_dump(doc))
    server = serve(scripts)
    env = {
        **worker_env,
        "ANTHROPIC_BASE_URL": "http://%s:%s" % server.server_address[:2],
        "CELERY_VISIBILITY_TIMEOUT": "3600",
    }
    workers = [Worker(env, tmp_path / f"worker-{i}.log") for i in range(WORKERS)]
    with (tmp_path / "beat.log").open("ab") as log:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO"]
            + ["--schedule", str(tmp_path / "beat-schedule")],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        for worker in workers:
            worker.start(wait=False)
        for worker in workers:
            wait_for(worker.ready, 60, "the workers to be ready")
        yield workers
    finally:
        for worker in workers:
            worker.stop()
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(timeout=30)
        server.shutdown()
        server.server_close()


def approve_waiting(ids: list) -> None:
    """A reviewer approves every tier 3 action as soon as it waits (in this process, like the web)."""
    for ar in ActionRequest.objects.filter(session__in=ids, status=ActionRequest.Status.AWAITING_APPROVAL):
        gateway.release(ar)


def test_workers_killed_at_random_lose_nothing_and_repeat_nothing(demo, cluster, tmp_path) -> None:
    rng = random.Random(SEED)
    began = time.monotonic()
    names = list(WORKFLOWS)
    ids: list = []
    kills = 0
    deadline = time.monotonic() + CHAOS_SECONDS
    while kills < KILLS or len(ids) < SESSIONS:
        assert time.monotonic() < deadline, f"seed {SEED}: only {kills} kills and {len(ids)} sessions in time"
        for _ in range(min(rng.choice((0, 1, 1)), SESSIONS - len(ids))):
            workflow = names[len(ids) % len(names)]
            agent, text, _writes = WORKFLOWS[workflow]
            ids.append(
                session_queue_run(agent=agent, workflow=workflow, input=text, trigger="chaos", initiated_by="u").pk
            )
        approve_waiting(ids)
        # When the next kill lands: this pause is the chaos itself, not a synchronization.
        time.sleep(rng.uniform(0.3, 1.5))
        ready = [w for w in cluster if w.ready()]
        if not ready:
            continue  # every worker is still starting: killing one now would test nothing
        victim = rng.choice(ready)
        victim.kill()
        victim.start(wait=False)
        kills += 1
    killing = time.monotonic() - began
    for worker in cluster:
        wait_for(worker.ready, 60, "the workers to be back")

    def all_ended() -> bool:
        approve_waiting(ids)
        return not AgentSession.objects.filter(pk__in=ids, status__in=AgentSession.LIVE).exists()

    wait_for(all_ended, DRAIN_SECONDS, f"every session to end (seed {SEED})")
    draining = time.monotonic() - began - killing

    sessions = list(AgentSession.objects.filter(pk__in=ids).select_related("workflow"))
    assert len(sessions) == len(ids) >= 10 and kills >= 20
    unfinished = {
        str(s.pk): (s.status, s.termination_reason, list(s.handoffs.values_list("trigger", flat=True)))
        for s in sessions
        if s.status != AgentSession.Status.COMPLETED
    }
    assert not unfinished, f"seed {SEED}: {unfinished}"
    assert not ActionRequest.objects.filter(status=ActionRequest.Status.EXECUTING).exists()
    for session in sessions:
        writes = session.action_requests.filter(tier__gte=2)
        assert sorted(writes.values_list("action", flat=True)) == WORKFLOWS[session.workflow.name][2], session.pk
        assert set(writes.values_list("status", flat=True)) == {"succeeded"}, session.pk
    writes = ActionRequest.objects.filter(session__in=ids, tier__gte=2)
    # Each write reached its system once, under its own idempotency key, and did its effect once.
    assert sorted(IdempotencyRecord.objects.values_list("key", flat=True)) == sorted(
        str(pk) for pk in writes.values_list("pk", flat=True)
    )
    assert Refund.objects.count() == writes.filter(action="crm.issue_refund").count()
    assert Note.objects.count() == writes.filter(action="crm.add_note").count()
    assert Comment.objects.count() == writes.filter(action="ticketing.add_comment").count()
    # Mail leaves the process before the idempotency record commits: a kill between the two can
    # send it again (at least once, not exactly once, for a system without idempotency keys).
    mails = sum(p.read_text().count("Subject: T-2001 needs a refund") for p in (tmp_path / "mail").glob("*.log"))
    assert mails >= writes.filter(action="mail.send_email").count()
    # Duplicates (redeliveries, the sweep's resends) were skipped quietly: no refusal, no alarm.
    assert not AuditEvent.objects.filter(kind="task.refused").exists()
    assert not SecurityAlert.objects.exists(), list(SecurityAlert.objects.values_list("kind", "summary"))
    result = verify()
    assert result.ok, result.message
    restarts = sum(w.log.read_text().count("sweep: session") for w in cluster)
    print(
        f"chaos seed {SEED}: {kills} kills over {len(ids)} sessions in {killing:.0f} s, all ended"
        f" {draining:.0f} s later; the sweep restarted a session {restarts} times"
    )
