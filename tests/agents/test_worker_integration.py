"""End to end with real parts: a Celery worker process on Redis and PostgreSQL, and the
offline model server over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connection

from agents import gateway
from agents.models import ActionRequest, AgentSession
from agents.services import agent_identity_suspend, session_queue_run
from audit.chain import verify
from audit.models import AuditEvent
from config.celery import app as celery_app
from demo_systems.models import Comment, IdempotencyRecord, Refund

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent.parent
REDIS_URL = os.environ.get("WARDEN_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def wait_for(condition: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll with a deadline; never sleep as synchronization."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Worker:
    def __init__(self, env: dict[str, str], log: Path):
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self._readies_before = 0

    def start(self, *extra: str, wait: bool = True) -> None:
        """Start the worker; with `wait`, return once this start (not an earlier one) is ready."""
        self._readies_before = self._readies()
        with self.log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--pool=solo",
                    "--without-mingle",
                    "--without-gossip",
                    "--loglevel=INFO",
                    *extra,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            wait_for(self.ready, 60, "the worker to be ready")

    def _readies(self) -> int:
        return self.log.read_bytes().count(b"ready.") if self.log.exists() else 0

    def ready(self) -> bool:
        return self.alive() and self._readies() > self._readies_before

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def broker(settings) -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is needed for this test: {exc}")
    client.flushdb()
    old = {key: celery_app.conf[key] for key in ("broker_url", "broker_transport_options")}
    _use_broker(broker_url=REDIS_URL, broker_transport_options={"visibility_timeout": 5})
    yield REDIS_URL
    _use_broker(**old)
    client.flushdb()


def _use_broker(**conf: Any) -> None:
    """Point this process's Celery app at another broker (its pools are built lazily, per URL)."""
    celery_app.conf.update(**conf)
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def worker_env(broker, model_server, tmp_path, settings) -> dict[str, str]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    host, port = model_server.server_address[:2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.test_settings",
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": broker,
            "CELERY_VISIBILITY_TIMEOUT": "5",
            "ANTHROPIC_BASE_URL": f"http://{host}:{port}",
            "WARDEN_MODEL_MAX_RETRIES": "0",
            "WARDEN_RUNNER_LEASE_SECONDS": "5",
            "WARDEN_SWEEP_SECONDS": "1",
            "WARDEN_DATA_DIR": str(tmp_path),
            "PYTHONUNBUFFERED": "1",
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": str(tmp_path / "mail"),
        }
    )
    # This process approves and queues too (as the web process would): it must agree with the
    # workers on the lease, which is also how long a worker has to claim a message.
    settings.WARDEN_RUNNER_LEASE_SECONDS = int(env["WARDEN_RUNNER_LEASE_SECONDS"])
    return env


@pytest.fixture
def worker(worker_env, tmp_path) -> Iterator[Worker]:
    w = Worker(worker_env, tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()


def status_of(session: AgentSession) -> str:
    return AgentSession.objects.get(pk=session.pk).status


def test_a_workflow_runs_pauses_at_tier_3_and_completes_after_release(demo, worker) -> None:
    session = session_queue_run(
        agent="refund-bot", workflow="refund-triage", input="Handle T-2002", trigger="test", initiated_by="user:alice"
    )
    wait_for(lambda: status_of(session) == "awaiting_approval", 60, "the session to pause at tier 3")
    tiers = list(session.action_requests.order_by("created_at").values_list("tier", "status"))
    assert tiers == [(1, "succeeded"), (1, "succeeded"), (1, "succeeded"), (2, "succeeded"), (3, "awaiting_approval")]
    assert gateway.release(session.action_requests.get(status="awaiting_approval")).status == "succeeded"
    wait_for(lambda: status_of(session) not in ("active", "awaiting_approval"), 60, "the session to end")
    # Termination is verified just after the end commits (the token must fail, the context be empty).
    wait_for(lambda: AgentSession.objects.get(pk=session.pk).termination_verified, 30, "verified termination")
    session.refresh_from_db()
    assert session.status == "completed", list(session.handoffs.values_list("trigger", flat=True))
    assert session.termination_verified and "Refunded" in session.final_answer
    assert Refund.objects.count() == 1 and Comment.objects.count() == 1
    result = verify()
    assert result.ok, result.message
    assert AuditEvent.objects.filter(kind="session.completed", session=str(session.pk)).exists()


def test_a_killed_worker_loses_nothing_and_repeats_nothing(demo, worker, tmp_path, settings) -> None:
    script = tmp_path / "slow.yaml"
    script.write_text(
        (ROOT / "examples/scripts/ticket-triage.yaml")
        .read_text()
        .replace(
            "  - tool_uses:\n      - tool: mail.send_email",
            "  - delay: 3\n    tool_uses:\n      - tool: mail.send_email",
        )
    )
    from agents.model_server import serve

    slow = serve(script)
    worker.stop()
    worker.env["ANTHROPIC_BASE_URL"] = "http://%s:%s" % slow.server_address[:2]
    worker.start()
    try:
        session = session_queue_run(
            agent="support-bot", workflow="ticket-triage", input="Triage", trigger="test", initiated_by="user:alice"
        )
        wait_for(
            lambda: session.action_requests.filter(action="ticketing.add_comment", status="succeeded").exists(),
            60,
            "the worker to be mid-session",
        )
        worker.kill()  # SIGKILL while the model is "thinking" about the email
        assert status_of(session) == "active"
        worker.start("--beat", "--schedule", str(tmp_path / "beat-schedule"))
        wait_for(lambda: status_of(session) != "active", 90, "the session to end after the restart")
        assert status_of(session) == "completed", list(session.handoffs.values_list("trigger", flat=True))
    finally:
        slow.shutdown()
    writes = session.action_requests.filter(tier=2)
    assert sorted(writes.values_list("action", flat=True)) == [
        "mail.send_email",
        "ticketing.add_comment",
        "ticketing.set_status",
    ]
    assert all(a.status == "succeeded" for a in writes)
    assert Comment.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 3  # one per write, none twice
    sent = [p.read_text() for p in (tmp_path / "mail").glob("*.log")]
    assert sum(text.count("Subject: T-2001 needs a refund") for text in sent) == 1  # sent exactly once
    assert verify().ok


def test_forged_messages_through_the_broker_execute_nothing(demo, worker) -> None:
    from agents.tasks import resume_session

    session = session_queue_run(
        agent="refund-bot", workflow="refund-triage", input="Handle T-2002", trigger="test", initiated_by="user:alice"
    )
    wait_for(lambda: status_of(session) == "awaiting_approval", 60, "the pause")
    ar = session.action_requests.get(status="awaiting_approval")
    resume_session.delay(str(session.pk), str(ar.pk))  # never approved
    resume_session.delay(str(session.pk), "00000000-0000-0000-0000-000000000000")  # no such action
    wait_for(lambda: AuditEvent.objects.filter(kind="task.refused").count() == 2, 30, "both refusals")
    from governance.models import AgentIdentity

    agent_identity_suspend(agent=AgentIdentity.objects.get(name="refund-bot"), actor="user:bob", reason="test")
    resume_session.delay(str(session.pk), str(ar.pk))  # the agent is suspended now
    wait_for(lambda: AuditEvent.objects.filter(kind="task.refused").count() == 3, 30, "the third refusal")
    assert not Refund.objects.exists()
    assert ActionRequest.objects.get(pk=ar.pk).status == "cancelled"


def test_canaries_of_never_persist_data_reach_no_table_log_or_worker_output(demo, worker, caplog) -> None:
    from tests.agents.test_context import CANARIES, _warden_tables_text

    for agent, workflow, text in [
        ("refund-bot", "refund-triage", "T-2002"),
        ("support-bot", "account-maintenance", "[script: prompt-injection] x"),
    ]:
        session = session_queue_run(agent=agent, workflow=workflow, input=text, trigger="test", initiated_by="u")
        wait_for(lambda s=session: status_of(s) != "active", 60, f"{workflow} to stop")
    text = _warden_tables_text() + caplog.text + worker.log.read_text()
    for ssn in CANARIES.values():
        assert ssn not in text
    assert "session.started" in _warden_tables_text()
