"""Faults with real processes: Redis (a private redis-server on a free port, never the
machine's shared one) killed and restarted, and PostgreSQL unreachable, in the middle of a
session. Afterwards no action is lost or executed twice, the session is resumed (or handed to
a person), and the audit chain verifies. (Workers killed: test_worker_integration.py,
test_recovery_worker.py and test_chaos.py.)"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from django.db import connection

from agents.model_server import serve
from agents.models import AgentSession
from agents.services import session_queue_run
from audit.chain import verify
from config.celery import app as celery_app
from demo_systems.models import Comment, IdempotencyRecord
from tests.agents.test_worker_integration import Worker, _use_broker, wait_for, worker_env  # noqa: F401 - fixtures

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent.parent


class RedisServer:
    """A redis-server of this test's own, on a free port: the machine's shared Redis is never
    stopped or restarted by a test."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.workdir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.workdir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.up, 20, f"redis-server on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: everything it held (queued and unacknowledged messages) is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def up(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=1).ping())
        except redis.ConnectionError:
            return False


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed for this test")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def broker(redis_server) -> Iterator[str]:
    """Overrides the shared broker fixture: these tests use (and may kill) their own Redis."""
    old = {key: celery_app.conf[key] for key in ("broker_url", "broker_transport_options")}
    _use_broker(broker_url=redis_server.url, broker_transport_options={"visibility_timeout": 5})
    yield redis_server.url
    _use_broker(**old)


@pytest.fixture
def slow_worker(worker_env, tmp_path) -> Iterator[Worker]:
    """A worker (with beat) whose model takes three seconds over the email step."""
    script = tmp_path / "slow.yaml"
    script.write_text(
        (ROOT / "examples/scripts/ticket-triage.yaml")
        .read_text()
        .replace(
            "  - tool_uses:\n      - tool: mail.send_email",
            "  - delay: 3\n    tool_uses:\n      - tool: mail.send_email",
        )
    )
    server = serve(script)
    worker = Worker(
        {**worker_env, "ANTHROPIC_BASE_URL": "http://%s:%s" % server.server_address[:2]}, tmp_path / "worker.log"
    )
    worker.start("--beat", "--schedule", str(tmp_path / "beat-schedule"))
    yield worker
    worker.stop()
    server.shutdown()


def mid_session(session: AgentSession) -> None:
    wait_for(
        lambda: session.action_requests.filter(action="ticketing.add_comment", status="succeeded").exists(),
        60,
        "the session to be mid-run",
    )


def finished(session: AgentSession) -> AgentSession:
    wait_for(lambda: AgentSession.objects.get(pk=session.pk).status not in AgentSession.LIVE, 120, "the session to end")
    return AgentSession.objects.get(pk=session.pk)


def assert_each_write_once(session: AgentSession) -> None:
    writes = list(session.action_requests.filter(tier=2).values_list("action", flat=True))
    assert len(writes) == len(set(writes))
    assert Comment.objects.count() == 1
    assert IdempotencyRecord.objects.count() == session.action_requests.filter(tier=2, status="succeeded").count()
    result = verify()
    assert result.ok, result.message


def test_redis_restarted_during_a_session(demo, redis_server, slow_worker) -> None:
    session = session_queue_run(
        agent="support-bot", workflow="ticket-triage", input="Triage", trigger="test", initiated_by="user:dana"
    )
    mid_session(session)
    redis_server.kill()  # the queue and the unacknowledged messages are lost with it
    redis_server.start()
    ended = finished(session)
    assert ended.status == "completed", ended.termination_reason
    assert_each_write_once(ended)


def test_postgres_unreachable_for_a_moment(demo, slow_worker) -> None:
    session = session_queue_run(
        agent="support-bot", workflow="ticket-triage", input="Triage", trigger="test", initiated_by="user:dana"
    )
    mid_session(session)
    database = connection.settings_dict["NAME"]
    admin = psycopg.connect(host="127.0.0.1", user=connection.settings_dict["USER"], dbname="postgres", autocommit=True)
    try:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
            [database, _our_backend_pid()],
        )
        time.sleep(3)  # the outage itself: the worker's model call returns while the database is away
    finally:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        admin.close()
    ended = finished(session)
    assert ended.status in ("completed", "handed_off")
    assert_each_write_once(ended)


def _our_backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]
