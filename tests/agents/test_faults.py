"""Faults with real processes: Redis restarted and PostgreSQL unreachable in the middle of a
session. Afterwards no action is lost or executed twice, the session is resumed (or handed
to a person), and the audit chain verifies. (A worker killed mid-run is in
test_worker_integration.py.)"""

from __future__ import annotations

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
from demo_systems.models import Comment, IdempotencyRecord
from tests.agents.test_worker_integration import REDIS_URL, Worker, broker, wait_for, worker_env  # noqa: F401 - fixtures

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent.parent
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/tmp",
    "--logfile",
    "",
]


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


def test_redis_restarted_during_a_session(demo, slow_worker) -> None:
    session = session_queue_run(
        agent="support-bot", workflow="ticket-triage", input="Triage", trigger="test", initiated_by="user:dana"
    )
    mid_session(session)
    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False, capture_output=True, timeout=10)
    subprocess.run(REDIS_START, check=True, capture_output=True, timeout=10)
    wait_for(lambda: _redis_up(), 20, "Redis to come back")
    ended = finished(session)
    assert ended.status in ("completed", "handed_off"), ended.termination_reason
    assert ended.status == "completed"
    assert_each_write_once(ended)


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL).ping())
    except redis.ConnectionError:
        return False


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
