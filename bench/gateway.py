"""Gateway benchmarks (issue 3), on PostgreSQL.

    .venv/bin/python bench/gateway.py [--calls 500]

1. The gateway's overhead per tool call: governed authorize() + execute of a tier 1 read,
   against calling the connector directly on the same input. Median and p99 in ms, and the ratio.
   Targets: median overhead <= 2 ms, p99 <= 10 ms.
2. The end-to-end time of a 10-tool-call session (examples/scripts/ten-calls.yaml) run by the
   runner against the offline model server over HTTP.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_url, django_on_fresh_database, percentile  # noqa: E402


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
    direct, governed = [], []
    _, token = sessions.start("refund-bot", "refund-triage", "bench", "system:bench")
    for i in range(args.calls + 20):
        t0 = time.perf_counter()
        connector.execute("crm.get_customer", params, credential, f"direct-{i}")
        t1 = time.perf_counter()
        result = gateway.authorize(token, "crm.get_customer", params, tool_use_id=f"bench-{i}")
        t2 = time.perf_counter()
        assert result.executed, result
        if i >= 20:  # warm-up
            direct.append((t1 - t0) * 1000)
            governed.append((t2 - t1) * 1000)
    overhead = [g - d for g, d in zip(governed, direct)]
    print(f"direct connector call : median {statistics.median(direct):6.2f} ms  p99 {percentile(direct, 0.99):6.2f} ms")
    print(
        f"governed authorize    : median {statistics.median(governed):6.2f} ms  p99 {percentile(governed, 0.99):6.2f} ms"
    )
    print(
        f"gateway overhead      : median {statistics.median(overhead):6.2f} ms  p99 {percentile(overhead, 0.99):6.2f} ms"
        f"  (targets 2 / 10 ms); ratio {statistics.median(governed) / statistics.median(direct):.1f}x"
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
