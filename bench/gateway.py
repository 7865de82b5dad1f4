"""Gateway benchmarks (issue 3), on PostgreSQL.

    .venv/bin/python bench/gateway.py [--calls 500]

1. The gateway's overhead per tool call: governed authorize() + execute of a tier 1 read,
   against calling the connector directly on the same input. Median and p99 in ms, and the ratio,
   each the median of 3 runs; and the round trips to PostgreSQL per call (every statement, plus
   the BEGIN and COMMIT that psycopg sends), governed against direct.
   Targets: median overhead <= 2 ms, p99 <= 10 ms, <= 8 round trips added.
2. The end-to-end time of a 10-tool-call session (examples/scripts/ten-calls.yaml) run by the
   runner against the offline model server over HTTP.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_url, django_on_fresh_database, percentile  # noqa: E402


def round_trips(call: Callable[[], object]) -> int:
    """Round trips to the database during one call: each statement Django sends, and each
    BEGIN, COMMIT or ROLLBACK psycopg sends on its own."""
    import psycopg
    from django.db import connection

    count = 0

    def statement(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal count
        count += 1
        return execute(sql, params, many, context)

    original = psycopg.Connection._exec_command

    def command(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        return (yield from original(self, *args, **kwargs))

    psycopg.Connection._exec_command = command  # type: ignore[method-assign]
    try:
        with connection.execute_wrapper(statement):
            call()
    finally:
        psycopg.Connection._exec_command = original  # type: ignore[method-assign]
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    django_on_fresh_database(bench_url())
    from django.conf import settings
    from django.core.management import call_command

    call_command("policy_apply", str(ROOT / "examples" / "policy.yaml"), verbosity=0, stdout=open(os.devnull, "w"))
    from demo_systems.seed import seed

    seed()
    from agents import gateway, runner, sessions
    from agents.connectors import get_connector
    from agents.model_server import serve
    from agents.models import AgentSession
    from agents.services import session_queue_run
    from governance.models import ServiceCredential

    params = {"customer_id": "C-1001"}
    connector = get_connector("demo_crm")
    credential = ServiceCredential.objects.get(name="crm-api")
    _, token = sessions.start("refund-bot", "refund-triage", "bench", "system:bench")
    runs = []
    for run in range(3):
        direct, governed = [], []
        for i in range(args.calls + 20):
            t0 = time.perf_counter()
            connector.execute("crm.get_customer", params, credential, f"direct-{run}-{i}")
            t1 = time.perf_counter()
            result = gateway.authorize(token, "crm.get_customer", params, tool_use_id=f"bench-{run}-{i}")
            t2 = time.perf_counter()
            assert result.executed, result
            if i >= 20:  # warm-up
                direct.append((t1 - t0) * 1000)
                governed.append((t2 - t1) * 1000)
        overhead = [g - d for g, d in zip(governed, direct)]
        runs.append(
            (
                statistics.median(direct),
                percentile(direct, 0.99),
                statistics.median(governed),
                percentile(governed, 0.99),
                statistics.median(overhead),
                percentile(overhead, 0.99),
            )
        )
    d50, d99, g50, g99, o50, o99 = (statistics.median(r[k] for r in runs) for k in range(6))
    direct_trips = round_trips(lambda: connector.execute("crm.get_customer", params, credential, "direct-count"))
    governed_trips = round_trips(
        lambda: gateway.authorize(token, "crm.get_customer", params, tool_use_id="bench-count").executed
    )
    print(f"tier 1 read, {args.calls} calls a run, median of 3 runs:")
    print(f"direct connector call : median {d50:6.2f} ms  p99 {d99:6.2f} ms")
    print(f"governed authorize    : median {g50:6.2f} ms  p99 {g99:6.2f} ms")
    print(
        f"gateway overhead      : median {o50:6.2f} ms  p99 {o99:6.2f} ms  (targets 2 / 10 ms); ratio {g50 / d50:.1f}x"
    )
    print(
        f"round trips per call  : governed {governed_trips}, direct {direct_trips}: the gateway adds "
        f"{governed_trips - direct_trips} (target <= 8)"
    )

    server = serve(ROOT / "examples" / "scripts")
    settings.ANTHROPIC_BASE_URL = "http://%s:%s" % server.server_address[:2]
    times = []
    for _ in range(5):
        session = session_queue_run(
            agent="refund-bot",
            workflow="refund-triage",
            input="[script: ten-calls] go",
            trigger="bench",
            initiated_by="system:bench",
        )
        t0 = time.perf_counter()
        runner.claim(session.pk, from_state=AgentSession.RunState.QUEUED)
        runner.run(session.pk)
        times.append(time.perf_counter() - t0)
        session.refresh_from_db()
        assert session.status == "completed" and session.action_requests.count() == 10, session.status
    server.shutdown()
    print(
        f"10-tool-call session  : median {statistics.median(times) * 1000:6.0f} ms over {len(times)} runs "
        f"(11 model calls over HTTP, 10 governed tool calls, start to verified termination)"
    )


if __name__ == "__main__":
    main()
