"""The decision API under load (issue 6): gunicorn with 2 workers on PostgreSQL, driven by wrk.

    .venv/bin/python bench/api_load.py [--seconds 20] [--connections 16]

Reports requests/s and p50/p99 latency of POST /api/v1/authorize for a tier 1 decision (with
its ActionRequest and audit write), and the same decision made in-process, for the API's
overhead. Targets: >= 500 decisions/s, p99 <= 50 ms. Needs Debian's `wrk`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PORT = int(os.environ.get("WARDEN_BENCH_PORT", "8951"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench/api_load.py needs wrk: apt-get install wrk")
    from bench.common import fresh_database

    url = os.environ.get("WARDEN_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/warden_bench")
    fresh_database(url)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "WARDEN_DATA_DIR": "/tmp/warden-bench",
        "WARDEN_API_RATE_AGENT": "10000000/min",
        "WARDEN_API_RATE_SESSION": "10000000/min",
        "WARDEN_API_RATE_ADDRESS": "10000000/min",
        "LOG_LEVEL": "WARNING",
        "DB_CONN_MAX_AGE": "600",
    }
    os.environ.update(env)
    import django

    django.setup()
    import logging

    logging.disable(logging.WARNING)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("policy_apply", str(ROOT / "examples/policy.yaml"), stdout=open(os.devnull, "w"))
    from agents import gateway, sessions

    _, token = sessions.start("refund-bot", "refund-triage", "bench", "system:bench", run_state="api")
    # The in-process decision, for comparison.
    inproc = []
    for _ in range(300):
        t0 = time.perf_counter()
        gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, execute=False)
        inproc.append((time.perf_counter() - t0) * 1000)

    server = subprocess.Popen(
        [
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            "2",
            "--threads",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**env, "PATH": f"{ROOT}/.venv/bin:" + env["PATH"]},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        body = json.dumps({"action": "crm.get_customer", "params": {"customer_id": "C-1001"}})
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(
                f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
                f'wrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.headers["Authorization"] = "Bearer {token}"\n'
            )
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{args.connections}",
                f"-d{args.seconds}s",
                "--latency",
                "-s",
                script.name,
                f"http://127.0.0.1:{PORT}/api/v1/authorize",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        server.terminate()
        server.wait(timeout=20)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    print(
        f"POST /api/v1/authorize (tier 1, 2 gunicorn workers x 2 threads, {args.connections} connections, {args.seconds} s):"
    )
    print(
        f"  {rps:,.0f} decisions/s, p50 {pct(50):.1f} ms, p99 {pct(99):.1f} ms (targets >= 500/s, p99 <= 50 ms)"
        f"{'; non-2xx: ' + errors.group(1) if errors else ''}"
    )
    print(
        f"in-process gateway.authorize (same decision): median {statistics.median(inproc):.2f} ms; "
        f"the API adds about {pct(50) - statistics.median(inproc):.1f} ms at p50 under load"
    )


if __name__ == "__main__":
    main()
