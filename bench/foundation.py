"""Foundation benchmarks: decide() calls/s, audit appends/s (1 and 8 writers), verify events/s.

bench/audit_log.py compares the audit log against plain inserts and a raw read loop.

    .venv/bin/python bench/foundation.py              # SQLite and PostgreSQL
    .venv/bin/python bench/foundation.py --db sqlite  # one database only

Targets (issue 2): decide >= 20,000 calls/s; verify >= 50,000 events/s.
PostgreSQL: WARDEN_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/warden_bench);
the database is dropped and re-created.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(database_url: str, migrate: bool = True) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def bench_decide(seconds: float = 2.0) -> float:
    from governance.policy import decide
    from governance.policyfile import from_document, load, snapshot_from_state

    state = from_document(load((ROOT / "examples" / "policy.yaml").read_text()))
    refunds = snapshot_from_state(state, "refund-triage")
    triage = snapshot_from_state(state, "ticket-triage")
    calls = [
        (refunds, "crm.get_customer", {"customer_id": "C-1001"}),
        (refunds, "crm.issue_refund", {"customer_id": "C-1001", "amount": 250, "currency": "EUR", "reason": "late"}),
        (refunds, "crm.delete_customer", {"customer_id": "C-1001"}),
        (
            triage,
            "mail.send_email",
            {"recipients": ["a@example.com", "b@evil.test"], "subject": "Hi", "body": "See https://docs.example.com/x"},
        ),
    ]
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for snap, action, params in calls:
            decide(snap, action, params)
        n += len(calls)
    return n / (time.perf_counter() - start)


def _append_worker(args: tuple[str, int]) -> None:
    database_url, count = args
    setup_django(database_url, migrate=False)
    import audit

    for i in range(count):
        audit.record(
            "bench.append",
            "system:bench",
            workflow="refund-triage",
            tier=1,
            outcome="ok",
            details={"i": i, "note": "x" * 200},
        )


def bench_appends(database_url: str, writers: int, per_writer: int) -> float:
    """Writers are separate processes, as web and worker processes are in production."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(writers) as pool:
        pool.map(_append_worker, [(database_url, 5)] * writers)  # warm up: imports, connections
        start = time.perf_counter()
        pool.map(_append_worker, [(database_url, per_writer)] * writers)
        return writers * per_writer / (time.perf_counter() - start)


def fill_chain(total: int) -> None:
    """Append `total` events in bulk and sequence them (see bench.audit_log.fill)."""
    from bench.audit_log import fill

    fill(total)


def bench_verify(total: int) -> tuple[float, int]:
    from audit.chain import verify
    from audit.models import AuditEvent

    missing = total - AuditEvent.objects.filter(seq__isnull=False).count()
    if missing > 0:
        fill_chain(missing)
    start = time.perf_counter()
    result = verify()
    elapsed = time.perf_counter() - start
    assert result.ok, result.message
    return result.count / elapsed, result.count


def worker(label: str, database_url: str, events: int) -> None:
    setup_django(database_url)
    print(f"[{label}] audit.record, 1 writer : {bench_appends(database_url, 1, 2000):9,.0f} appends/s")
    print(f"[{label}] audit.record, 8 writers: {bench_appends(database_url, 8, 500):9,.0f} appends/s")
    rate, count = bench_verify(events)
    print(f"[{label}] audit_verify           : {rate:9,.0f} events/s over {count:,} events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--worker", nargs=2, metavar=("LABEL", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.events)
        return

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
    import django

    django.setup()
    print(f"decide() on examples/policy.yaml : {bench_decide():9,.0f} calls/s (target >= 20,000)")

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.db in ("sqlite", "both"):
            runs.append(("sqlite", f"sqlite:///{tmp}/bench.sqlite3"))
        if args.db in ("postgres", "both"):
            url = os.environ.get("WARDEN_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/warden_bench")
            import dj_database_url
            import psycopg

            cfg = dj_database_url.parse(url)
            with psycopg.connect(
                host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"], dbname="postgres", autocommit=True
            ) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{cfg["NAME"]}"')
                conn.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
            runs.append(("postgres", url))
        for label, url in runs:
            env = {**os.environ, "WARDEN_DATA_DIR": tmp, "WARDEN_CHECKPOINT_DIR": f"{tmp}/{label}-checkpoints"}
            subprocess.run(
                [sys.executable, __file__, "--events", str(args.events), "--worker", label, url], check=True, env=env
            )


if __name__ == "__main__":
    main()
