"""Audit log benchmarks (issue 12), on PostgreSQL, each printed as a ratio measured in this run.

    .venv/bin/python bench/audit_log.py [--per-writer 1000] [--events 100000]

1. Appends with 8 writer processes (audit.record, each in its own transaction, with the
   sequencer running beside them) against plain single-row INSERTs of the same row into a
   copy of the table (same columns and indexes, no trigger) by 8 writers. Target >= 70%.
2. Commit -> sequenced latency under that load, p50 and p99: each writer notes when its commit
   returned; the sequencer notes when each batch committed. Target p99 <= 50 ms.
3. Verification of 100,000 events (audit.chain.verify: leaves, tree nodes, checkpoints, the
   checkpoint directory) against reading the same rows and hashing them in a tight loop.
   Targets >= 150,000 events/s and >= 50% of the raw loop.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_url, django_on_fresh_database, percentile  # noqa: E402

ROW = {
    "kind": "bench.append",
    "actor": "system:bench",
    "workflow": "refund-triage",
    "system": "crm",
    "action": "crm.get_customer",
    "tier": 1,
    "outcome": "ok",
}


def _setup(url: str, folder: str) -> None:
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="config.test_settings",
        WARDEN_CHECKPOINT_DIR=folder,
        PYTHONPATH=str(ROOT),
    )
    import django

    django.setup()


def _append_writer(args: tuple[str, str, int, multiprocessing.Barrier]) -> list[tuple[int, float]]:
    url, folder, count, barrier = args
    _setup(url, folder)
    import audit

    for i in range(5):  # warm up: imports, the connection, the never-persist cache
        audit.record("bench.warmup", "system:bench", details={"i": i})
    barrier.wait()
    commits = []
    for i in range(count):
        event = audit.record(**ROW, details={"i": i, "note": "x" * 200})
        commits.append((event.pk, time.time()))  # autocommit: the insert's transaction has committed
    return commits


def _plain_writer(args: tuple[str, str, int, multiprocessing.Barrier]) -> list[tuple[int, float]]:
    url, folder, count, barrier = args
    _setup(url, folder)
    from django.db import connection
    from django.utils import timezone

    sql = (
        "INSERT INTO bench_plain (at, kind, actor, session, workflow, system, data_type, action, tier, outcome, "
        "details, hash, legacy_prev_hash, legacy_hmac) VALUES (%s, %s, %s, '', %s, %s, '', %s, %s, %s, %s, %s, '', '')"
    )
    with connection.cursor() as cursor:
        barrier.wait()
        for i in range(count):
            # The same Python work per row as an append (canonical JSON, SHA-256), without the log.
            details = json.dumps({"i": i, "note": "x" * 200}, sort_keys=True, separators=(",", ":"))
            digest = hashlib.sha256(b"\x00" + details.encode()).hexdigest()
            cursor.execute(
                sql,
                [
                    timezone.now(),
                    ROW["kind"],
                    ROW["actor"],
                    ROW["workflow"],
                    ROW["system"],
                    ROW["action"],
                    ROW["tier"],
                    ROW["outcome"],
                    details,
                    digest,
                ],
            )
    return []


def _sequencer(url: str, folder: str, stop: multiprocessing.Event, out: multiprocessing.Queue) -> None:
    _setup(url, folder)
    from audit.notes import signer
    from audit.sequencer import Sequencer

    sequencer = Sequencer(signer())
    batches = []
    while not stop.is_set():  # Sequencer.run, noting when each batch committed
        if not sequencer._work_waiting():
            time.sleep(0.005)  # the daemon's poll interval (WARDEN_SEQUENCER_POLL_MS)
            continue
        result = sequencer.run_batch()
        if result.sequenced:
            batches.append((result.committed_at, result.tree_size))
    sequencer.drain()
    out.put(batches)


def _run(target, url: str, folder: str, writers: int, per_writer: int) -> tuple[float, list[list[tuple[int, float]]]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(writers + 1)
    with ctx.Pool(writers) as pool:
        pending = pool.map_async(target, [(url, folder, per_writer, barrier)] * writers)
        barrier.wait()
        start = time.perf_counter()
        results = pending.get()
        return writers * per_writer / (time.perf_counter() - start), results


def bench_appends(url: str, folder: str, writers: int, per_writer: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_plain (LIKE audit_auditevent INCLUDING ALL)")
    ctx = multiprocessing.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    sequencer = ctx.Process(target=_sequencer, args=(url, folder, stop, out))
    sequencer.start()
    plain_rate, _ = _run(_plain_writer, url, folder, writers, per_writer)
    append_rate, commits = _run(_append_writer, url, folder, writers, per_writer)
    plain_again, _ = _run(_plain_writer, url, folder, writers, per_writer)  # the table grew: be fair to both
    stop.set()
    batches = out.get(timeout=120)
    sequencer.join(timeout=60)
    plain = (plain_rate + plain_again) / 2
    print(f"plain INSERT, {writers} writers       : {plain:9,.0f} rows/s ({plain_rate:,.0f} and {plain_again:,.0f})")
    print(f"audit.record, {writers} writers       : {append_rate:9,.0f} appends/s (sequencer running)")
    print(f"appends / plain inserts           : {append_rate / plain:9.0%}   (target >= 70%)")

    from audit.models import AuditEvent

    seq_of = dict(AuditEvent.objects.filter(kind=ROW["kind"]).values_list("id", "seq"))
    latencies = []
    for writer in commits:
        for pk, committed in writer:
            seq = seq_of[pk]
            sequenced = next(at for at, size in batches if size >= seq)
            latencies.append(max(0.0, sequenced - committed) * 1000)
    print(
        f"commit -> sequenced               : p50 {percentile(latencies, 0.5):6.1f} ms, "
        f"p99 {percentile(latencies, 0.99):6.1f} ms over {len(latencies):,} events (target p99 <= 50 ms)"
    )


def fill(total: int) -> None:
    """Append `total` events in bulk (leaf hashes exactly as record() computes them) and sequence them."""
    from django.utils import timezone

    from audit.chain import LEAF_FIELDS, _iso, leaf_hex
    from audit.models import AuditEvent
    from audit.notes import signer
    from audit.sequencer import Sequencer

    batch = []
    for i in range(total):
        event = AuditEvent(
            at=timezone.now(),
            kind="bench.fill",
            actor="system:bench",
            workflow="refund-triage",
            system="crm",
            action="crm.get_customer",
            tier=1,
            outcome="allowed",
            details={"i": i, "customer_id": f"C-{i:06d}"},
        )
        fields = {name: getattr(event, name) for name in LEAF_FIELDS}
        fields["at"] = _iso(event.at)
        event.hash = leaf_hex(fields)
        batch.append(event)
        if len(batch) == 5000:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)
    Sequencer(signer(), batch=5000).drain()


def raw_loop() -> tuple[float, int]:
    """Read the same rows the same way and hash each in a tight loop: the floor for verify."""
    from django.db import connection

    from audit.verify import _read_chunk

    count, last, start = 0, 0, time.perf_counter()
    while rows := _read_chunk(last, 1000):
        for row in rows:
            hashlib.sha256(repr(row).encode()).digest()
        count += len(rows)
        last = rows[-1][0]
    assert connection.vendor == "postgresql"
    return count / (time.perf_counter() - start), count


def bench_verify(events: int) -> None:
    from audit.chain import verify
    from audit.models import AuditEvent

    missing = events - AuditEvent.objects.filter(seq__isnull=False).count()
    if missing > 0:
        fill(missing)
    raw_rate, raw_count = raw_loop()
    start = time.perf_counter()
    result = verify()
    rate = result.count / (time.perf_counter() - start)
    assert result.ok, result.message
    print(f"raw read + SHA-256 loop           : {raw_rate:9,.0f} rows/s over {raw_count:,} rows")
    print(f"audit_verify                      : {rate:9,.0f} events/s over {result.count:,} events (target >= 150,000)")
    print(f"verify / raw loop                 : {rate / raw_rate:9.0%}   (target >= 50%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--per-writer", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="warden-bench-checkpoints-")
    os.environ["WARDEN_CHECKPOINT_DIR"] = folder
    url = bench_url()
    django_on_fresh_database(url, WARDEN_CHECKPOINT_DIR=folder)
    bench_appends(url, folder, args.writers, args.per_writer)
    bench_verify(args.events)


if __name__ == "__main__":
    main()
