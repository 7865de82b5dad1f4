"""The sequencer: batches, all-or-nothing, failure and recovery, lag reporting."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from django.db import connection
from django.test import Client

import audit
from audit import checkpoints
from audit.chain import verify
from audit.models import AuditEvent, Checkpoint, TreeNode
from audit.notes import signer
from audit.sequencer import FAILING, Sequencer, lag

pytestmark = pytest.mark.django_db


def _append(n: int) -> None:
    for i in range(n):
        audit.record("test.event", "system:test", details={"i": i})


def test_it_sequences_in_batches_and_signs_once_per_interval() -> None:
    _append(10)
    sequencer = Sequencer(signer(), batch=3, checkpoint_interval=3600)
    first = sequencer.run_batch()
    assert (first.sequenced, first.tree_size) == (3, 3) and first.checkpoint is not None
    second = sequencer.run_batch()
    assert (second.sequenced, second.tree_size, second.checkpoint) == (3, 6, None)  # interval not over
    assert sequencer.drain() == 4  # drain signs at the end whatever the interval
    assert list(Checkpoint.objects.order_by("tree_size").values_list("tree_size", flat=True)) == [3, 10]
    assert list(AuditEvent.objects.order_by("id").values_list("seq", flat=True)) == list(range(1, 11))
    assert TreeNode.objects.count() == 10 - bin(10).count("1")  # perfect subtrees above the leaves
    assert verify().ok


def test_a_batch_that_fails_midway_leaves_nothing_behind(monkeypatch) -> None:
    _append(5)
    sequencer = Sequencer(signer())

    def crash(*args, **kwargs):
        raise OSError("killed while signing")

    monkeypatch.setattr(checkpoints, "sign", crash)
    with pytest.raises(OSError):
        sequencer.run_batch(force_checkpoint=True)
    assert AuditEvent.objects.filter(seq__isnull=False).count() == 0
    assert TreeNode.objects.count() == 0 and Checkpoint.objects.count() == 0
    assert checkpoints.external_leaf_count() == 0  # the directory is written only after commit
    monkeypatch.undo()
    assert sequencer.drain() == 5
    assert list(AuditEvent.objects.order_by("id").values_list("seq", flat=True)) == [1, 2, 3, 4, 5]
    assert verify().ok


def test_two_sequencers_taking_turns_build_one_tree() -> None:
    one, two = Sequencer(signer(), batch=2), Sequencer(signer(), batch=2)
    for _ in range(4):
        _append(3)
        one.run_batch(force_checkpoint=True)
        two.run_batch(force_checkpoint=True)  # its cached frontier is stale: it must re-read
    one.drain()
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 13))
    result = verify()
    assert result.ok and result.count == 12


def test_a_crash_between_commit_and_the_directory_is_caught_up(monkeypatch) -> None:
    _append(4)
    sequencer = Sequencer(signer())
    monkeypatch.setattr(Sequencer, "_publish", lambda self, *a: None)
    sequencer.drain()
    assert checkpoints.external_leaf_count() == 0
    monkeypatch.undo()
    _append(2)
    sequencer.drain()
    assert checkpoints.external_leaf_count() == 6
    assert verify().ok


@pytest.mark.django_db(transaction=True)
def test_a_failing_sequencer_alerts_and_recovers_while_appends_commit(monkeypatch, caplog) -> None:
    sequencer = Sequencer(signer(), checkpoint_interval=0)
    real = Sequencer.run_batch
    failures = {"left": 3}
    tree = {"size": 0}

    def flaky(self, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise PermissionError("permission denied for table audit_auditevent")
        result = real(self, **kwargs)
        tree["size"] = result.tree_size
        return result

    monkeypatch.setattr(Sequencer, "run_batch", flaky)
    stop = threading.Event()
    caplog.set_level(logging.CRITICAL, logger="warden.audit.sequencer")
    thread = threading.Thread(target=sequencer.run, args=(stop, 0.005))
    _append(3)
    thread.start()
    try:
        _append(2)  # appends commit while the sequencer cannot write
        # Polled in memory, not in the database: on the suite's in-memory SQLite a read from
        # this thread while the sequencer writes is refused at once ("table is locked").
        deadline = time.monotonic() + 30
        while not (tree["size"] >= 5 and FAILING._value.get() == 0) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert "ALERT audit sequencer cannot write" in caplog.text
    assert failures["left"] == 0 and FAILING._value.get() == 0
    assert AuditEvent.objects.filter(seq__isnull=False).count() == 5
    assert verify().ok


def test_lag_is_reported_in_readyz_and_metrics() -> None:
    assert lag() == (0, 0.0)
    _append(2)
    if connection.vendor == "postgresql":
        pytest.skip("the append-only trigger forbids backdating the events")
    AuditEvent.objects.filter(seq__isnull=True).update(at="2020-01-01T00:00:00Z")
    pending, seconds = lag()
    assert pending == 2 and seconds > 86400
    body = Client().get("/readyz").json()
    assert body["audit_sequencer"]["pending"] == 2
    assert body["warnings"] and "sequencer is" in body["warnings"][0]
    metrics = Client().get("/metrics").content.decode()
    assert "warden_audit_unsequenced_events 2.0" in metrics and "warden_audit_sequencer_lag_seconds" in metrics
