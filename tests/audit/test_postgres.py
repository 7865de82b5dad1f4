"""PostgreSQL-only guarantees: one tree under concurrent writers and a sequencer killed twice,
commit order, the advisory lock, and the append-only triggers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, connections, transaction

import audit
from audit.chain import verify
from audit.models import AuditEvent, Checkpoint, TreeNode

pytestmark = [pytest.mark.postgres, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
# A writer writes in three phases; the test releases each phase by creating a file, so the
# sequencer is killed while writes are under way, not after they are over.
WRITER = """
import os, sys, time, django
django.setup()
import audit
n, gate = int(sys.argv[1]), sys.argv[2]
i = 0
for phase, count in enumerate((200, 150, 150)):
    deadline = time.monotonic() + 120
    while phase and not os.path.exists(f"{gate}.{phase}") and time.monotonic() < deadline:
        time.sleep(0.01)
    for _ in range(count):
        audit.record("test.concurrent", f"system:writer-{n}", details={"i": i})
        i += 1
"""


def _env(folder: Path) -> dict[str, str]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "WARDEN_CHECKPOINT_DIR": str(folder),
        "WARDEN_SEQUENCER_BATCH": "200",
        "PYTHONPATH": str(ROOT),
    }


def _sequenced() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_auditevent WHERE seq IS NOT NULL")
        return cursor.fetchone()[0]


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_eight_writers_and_a_sequencer_killed_twice_leave_one_tree(tmp_path: Path, _checkpoint_dir: Path) -> None:
    writers, per_writer = 8, 500
    env = _env(_checkpoint_dir)  # the sequencers write where this test's verify() reads
    logs = tmp_path / "logs"
    logs.mkdir()

    def sequencer(name: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "manage.py", "audit_sequencer"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(logs / f"{name}.log", "w"),
        )

    gate = tmp_path / "go"
    first = sequencer("first")
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(n), str(gate)], cwd=ROOT, env=env) for n in range(writers)
    ]
    standby = None
    try:
        _wait(lambda: _sequenced() >= 1600, 120, "the first phase to be sequenced")
        standby = sequencer("second")  # waits on the advisory lock while the first runs
        _wait(lambda: "waiting" in (logs / "second.log").read_text(), 60, "the second sequencer to wait")
        Path(f"{gate}.1").touch()
        _wait(lambda: _sequenced() > 1650, 60, "writes to resume")
        first.send_signal(signal.SIGKILL)  # while events arrive: as likely as not mid-batch
        first.wait(timeout=30)
        seen = _sequenced()
        _wait(lambda: _sequenced() > seen, 120, "the standby to take over")
        Path(f"{gate}.2").touch()
        _wait(lambda: _sequenced() > 2850, 60, "the last phase to start")
        standby.send_signal(signal.SIGKILL)
        standby.wait(timeout=30)
        third = sequencer("third")
        for proc in procs:
            assert proc.wait(timeout=240) == 0
        _wait(lambda: _sequenced() == writers * per_writer, 120, "every event to be sequenced")
        _wait(
            lambda: Checkpoint.objects.order_by("-tree_size").values_list("tree_size", flat=True).first() == 4000,
            30,
            "the last checkpoint",
        )
        third.send_signal(signal.SIGTERM)
        assert third.wait(timeout=30) == 0
    except AssertionError:
        print({p.name: p.read_text()[-2000:] for p in logs.iterdir()})
        raise
    finally:
        for proc in [first, standby, *procs]:
            if proc is not None and proc.poll() is None:
                proc.kill()
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 4001))  # no gap, no duplicate, nothing unsequenced
    per_actor = {f"system:writer-{n}": AuditEvent.objects.filter(actor=f"system:writer-{n}").count() for n in range(8)}
    assert set(per_actor.values()) == {per_writer}
    assert TreeNode.objects.count() == 4000 - bin(4000).count("1")
    result = verify()  # every leaf, node and checkpoint, in the database and in the directory
    assert result.ok, result.message
    assert (result.count, result.checkpoint_size, result.external_size) == (4000, 4000, 4000)


@pytest.mark.django_db(transaction=True)
def test_an_event_that_commits_late_is_sequenced_after_those_committed_before_it() -> None:
    inserted, release = threading.Event(), threading.Event()
    ids: dict[str, int] = {}

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                ids["slow"] = audit.record("test.slow", "system:slow").pk
                inserted.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert inserted.wait(timeout=30)
    ids["fast"] = audit.record("test.fast", "system:fast").pk
    assert ids["slow"] < ids["fast"]
    audit.sequence_now()  # sees only the committed one
    release.set()
    thread.join(timeout=30)
    audit.sequence_now()
    order = dict(AuditEvent.objects.values_list("kind", "seq"))
    assert order == {"test.fast": 1, "test.slow": 2}
    assert verify().ok


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET outcome = 'rewritten'",
        "DELETE FROM audit_auditevent",
        "UPDATE audit_auditevent SET seq = seq + 1",
        "UPDATE audit_checkpoint SET root_hash = 'x'",
        "DELETE FROM audit_checkpoint",
        "UPDATE audit_treenode SET hash = 'x'",
        "DELETE FROM audit_treenode",
    ],
)
def test_the_triggers_refuse_update_and_delete(sql: str) -> None:
    for _i in range(3):
        audit.record("test.event", "system:test", outcome="ok")
    audit.sequence_now()
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEvent.objects.filter(outcome="ok").count() == 3
    assert verify().ok


@pytest.mark.django_db
def test_seq_can_be_set_once_and_nothing_else_with_it() -> None:
    event = audit.record("test.event", "system:test", outcome="ok")
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditevent SET seq = 1, outcome = 'x' WHERE id = %s", [event.pk])
    audit.sequence_now()
    assert AuditEvent.objects.get().seq == 1


@pytest.mark.django_db
def test_the_orm_cannot_delete_events_either() -> None:
    audit.record("test.event", "system:test")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_event_cannot_be_inserted_with_a_seq() -> None:
    """Only the sequencer numbers events: an INSERT that carries a seq (one far ahead of the tree
    would stop the sequencer for good) is refused, and the sequencer carries on."""
    audit.record("test.before", "system:test")
    audit.sequence_now()
    with pytest.raises(DatabaseError, match="inserted without a seq"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO audit_auditevent (seq, at, kind, actor, session, workflow, system, data_type, action, "
                "tier, outcome, details, hash, legacy_prev_hash, legacy_hmac) VALUES (1000000000, now(), 'x', 'x', "
                "'', '', '', '', '', NULL, '', '{}', %s, '', '')",
                ["f" * 64],
            )
    audit.record("test.after", "system:test")
    assert audit.sequence_now() == 1
