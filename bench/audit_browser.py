"""Audit browser on 1,000,000 events (issue 5), on PostgreSQL: the time to serve one page of
search results for common filters, first page and deep pages (keyset pagination).

    .venv/bin/python bench/audit_browser.py [--events 1000000]

Target: every page within 200 ms. The events are generated in SQL (their hashes are not a
valid chain: this measures search, not verification).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    from bench.common import bench_url, django_on_fresh_database

    django_on_fresh_database(bench_url())
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # lets the bench read the rendered page's context

    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        # Generated rows carry their seq: past the trigger that keeps numbering to the sequencer.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            """
            INSERT INTO audit_auditevent (id, seq, at, kind, actor, session, workflow, system, data_type, action,
                                          tier, outcome, details, legacy_prev_hash, legacy_hmac, hash)
            SELECT g, g, now() - make_interval(secs => %s - g),
                   (ARRAY['action.executing','action.executed','action.denied','session.started',
                          'approval.decided','policy.updated'])[1 + g %% 6],
                   'agent:bot-' || (g %% 50), 'sess-' || (g / 20), 'wf-' || (g %% 7), 'sys-' || (g %% 5), '',
                   'act-' || (g %% 30), 1 + g %% 4, (ARRAY['succeeded','denied','executing'])[1 + g %% 3],
                   jsonb_build_object('i', g), '', '', repeat('f', 64)
            FROM generate_series(1, %s) AS g
        """,
            [args.events, args.events],
        )
        cursor.execute("ANALYZE audit_auditevent")
    print(f"generated {args.events:,} events in {time.perf_counter() - t0:.1f} s")
    from tests.approvals.conftest import make_user

    client = Client()
    client.force_login(make_user("carol", "compliance"))
    deep = args.events // 2
    cases = {
        "first page, no filter": {},
        "deep page (keyset)": {"before": deep},
        "kind": {"kind": "action.denied"},
        "agent": {"agent": "bot-7"},
        "session": {"session": f"sess-{deep // 20}"},
        "workflow + outcome": {"workflow": "wf-3", "outcome": "denied"},
        "system, deep page": {"system": "sys-2", "before": deep},
        "time range (a day)": {"since": "2000-01-01", "until": "2999-01-01", "kind": "policy.updated"},
    }
    for name, params in cases.items():
        times = []
        for _ in range(7):
            t = time.perf_counter()
            response = client.get("/audit/", params)
            times.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200 and response.context["events"], name
        print(f"{name:<26}: median {statistics.median(times):6.1f} ms  max {max(times):6.1f} ms  (target < 200 ms)")


if __name__ == "__main__":
    main()
