"""The decision API under load (issues 6 and 13): gunicorn on PostgreSQL, driven by wrk.

    .venv/bin/python bench/api_load.py [--seconds 5] [--connections 8] [--serving 4x1,2x2]

For each gunicorn setup (worker processes x threads), in the same run and against the same
server: POST /api/v1/authorize for a tier 1 decision (its ActionRequest and audit event
committed), spread over --sessions sessions (64; each request takes the next one's token), a no-op DRF endpoint, and a DRF endpoint that makes one durable single-row INSERT
(bench/serving_urls.py). Requests/s and p50/p99 of each, each the median of 3 runs, and the ratios.
Targets (issue 13, 8 connections): authorize >= 50% of the INSERT endpoint's requests/s,
>= 25% of the no-op's, p99 <= 25 ms. Needs Debian's `wrk`.
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
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PORT = int(os.environ.get("WARDEN_BENCH_PORT", "8951"))
REFUND = {"customer_id": "C-1002", "amount": 250, "currency": "EUR", "reason": "duplicate"}
WHILE_WAITING = "/bench/noop (long-polls wait)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--sessions", type=int, default=64, help="sessions the requests rotate over (1: the old bench)")
    parser.add_argument(
        "--serving",
        default="asgi4,4x1",
        help="gunicorn setups, comma-separated: asgiN (N uvicorn workers, config.asgi, the Procfile's) or WxT (sync)",
    )
    parser.add_argument("--long-polls", type=int, default=8, help="runtimes long-polling while the no-op is measured")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench/api_load.py needs wrk: apt-get install wrk")
    from bench.common import fresh_database

    url = os.environ.get("WARDEN_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/warden_bench")
    fresh_database(url)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "bench.serving_settings",
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
    from django.db import connection

    from bench.serving_urls import TABLE_SQL

    with connection.cursor() as cursor:
        cursor.execute(TABLE_SQL)
    from agents import gateway, sessions

    # Several sessions, as several runtimes would be: each allowed call holds its session's row
    # from the claim to the commit, so decisions of one session queue behind each other, and
    # 8 connections into one session would measure that queue, not the API.
    tokens = [
        sessions.start("refund-bot", "refund-triage", "bench", "system:bench", run_state="api")[1]
        for _ in range(args.sessions)
    ]
    token = tokens[0]
    # Runtimes waiting for a reviewer: each long-polls its own tier 3 action.
    waiting = []
    for _ in range(args.long_polls):
        waiter = sessions.start("refund-bot", "refund-triage", "bench", "system:bench", run_state="api")[1]
        pending = gateway.authorize(waiter, "crm.issue_refund", REFUND, execute=False)
        waiting.append((waiter, pending.action_request_id))
    # The in-process decision, for comparison.
    inproc = []
    for _ in range(300):
        t0 = time.perf_counter()
        gateway.authorize(token, "crm.get_customer", {"customer_id": "C-1001"}, execute=False)
        inproc.append((time.perf_counter() - t0) * 1000)

    body = json.dumps({"action": "crm.get_customer", "params": {"customer_id": "C-1001"}})
    print(f"in-process gateway.authorize (same decision, execute=False): median {statistics.median(inproc):.2f} ms")
    for setup in args.serving.split(","):
        asgi = setup.startswith("asgi")  # asgiN: N uvicorn worker processes (config/asgi.py)
        workers, threads = (int(setup.removeprefix("asgi")), 1) if asgi else (int(n) for n in setup.split("x"))
        figures = serve_and_load(env, workers, threads, tokens, waiting, body, args, asgi=asgi)
        a, n, i = figures["/api/v1/authorize"], figures["/bench/noop"], figures["/bench/insert"]
        print(
            f"gunicorn {f'{workers} uvicorn workers (config.asgi)' if asgi else f'{workers} workers x {threads} threads'}, "
            f"{args.connections} connections, median of 3 x {args.seconds} s:"
        )
        for path, (rps, p50, p99, bad) in figures.items():
            print(
                f"  POST {path:<30} {rps:8,.0f} req/s  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms{'  non-2xx ' + str(bad) if bad else ''}"
            )
        w = figures[WHILE_WAITING]
        print(f"  no-op while {args.long_polls} long-polls wait: {w[0] / n[0]:.0%} of the no-op's requests/s")
        print(
            f"  authorize / insert {a[0] / i[0]:.0%} (target >= 50%), authorize / no-op {a[0] / n[0]:.0%} "
            f"(target >= 25%), authorize p99 {a[2]:.1f} ms (target <= 25 ms)"
        )


def serve_and_load(
    env: dict[str, str],
    workers: int,
    threads: int,
    tokens: list[str],
    waiting: list[tuple[str, str]],
    body: str,
    args: argparse.Namespace,
    asgi: bool = False,
) -> dict[str, tuple[float, float, float, int]]:
    venv_bin = str(Path(sys.executable).parent)
    server = subprocess.Popen(
        [
            f"{venv_bin}/gunicorn",
            *(["config.asgi", "--worker-class", "uvicorn_worker.UvicornWorker"] if asgi else ["config.wsgi"]),
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--log-level",
            "warning",
            # As the Procfile: a uvicorn worker closes each connection after its answer, so
            # that the next request goes to whichever worker accepts it (measured: a lower tail).
            *(["--keep-alive", "0"] if asgi else []),
        ],
        cwd=ROOT,
        env={**env, "PATH": f"{venv_bin}:" + env["PATH"]},
    )
    try:
        deadline = time.monotonic() + 120  # a busy machine boots workers slowly
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            # Each request takes the next session's token; each wrk thread starts elsewhere in the list.
            script.write(
                f"tokens = {{{', '.join(json.dumps(t) for t in tokens)}}}\n"
                f"body = {json.dumps(body)}\n"
                "n = 0\nsetup = function(thread) thread:set('offset', n * 7) n = n + 1 end\n"
                "counter = 0\n"
                "request = function()\n"
                "  counter = counter + 1\n"
                "  local token = tokens[((counter + (offset or 0)) % #tokens) + 1]\n"
                "  return wrk.format('POST', nil, {['Content-Type'] = 'application/json', "
                "['Authorization'] = 'Bearer ' .. token}, body)\n"
                "end\n"
            )
        runs: dict[str, list[tuple[float, float, float, int]]] = {}
        for _ in range(3):  # interleaved, so that the endpoints see the same machine
            for path in ("/api/v1/authorize", "/bench/noop", "/bench/insert"):
                runs.setdefault(path, []).append(wrk(script.name, path, args))
            # The no-op again, while runtimes long-poll actions that nobody decides.
            polls = [
                threading.Thread(target=long_poll, args=(waiter, ar, args.seconds + 5), daemon=True)
                for waiter, ar in waiting
            ]
            for poll in polls:
                poll.start()
            runs.setdefault(WHILE_WAITING, []).append(wrk(script.name, "/bench/noop", args))
            for poll in polls:
                poll.join()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return {path: tuple(statistics.median(r[k] for r in rs) for k in range(4)) for path, rs in runs.items()}  # type: ignore[misc]


def long_poll(token: str, action_request_id: str, seconds: int) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/api/v1/actions/{action_request_id}?wait={seconds}",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=seconds + 60) as response:
        assert json.load(response)["status"] == "awaiting_approval"


def wrk(script: str, path: str, args: argparse.Namespace) -> tuple[float, float, float, int]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{args.connections}",
            f"-d{args.seconds}s",
            "--latency",
            "-s",
            script,
            f"http://127.0.0.1:{PORT}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(label: str) -> float:
        found = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        if found is None:
            return float("nan")  # nothing was answered
        value, unit = found.groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, pct(50), pct(99), int(errors.group(1)) if errors else 0


if __name__ == "__main__":
    main()
