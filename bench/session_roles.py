"""Per-session database roles (issue 7): the time to create and to drop one, on the local PostgreSQL.

    .venv/bin/python bench/session_roles.py [--sessions 50]

Target: create + drop <= 30 ms median. Creating the role is added to session start.
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
    parser.add_argument("--sessions", type=int, default=50)
    args = parser.parse_args()
    from bench.common import bench_url, django_on_fresh_database, percentile

    url = bench_url()
    django_on_fresh_database(url)
    import psycopg

    from agents.connectors.postgres import drop_session_roles, provision_session_roles
    from agents.models import AgentSession
    from governance.models import ServiceCredential, System
    from governance.policyfile import apply_policy, from_document, load
    from tests.agents import test_postgres_session_roles as fixture

    admin = url.rsplit("/", 1)[0] + "/postgres"
    enterprise = url.rsplit("/", 1)[0] + f"/{fixture.ENTERPRISE_DB}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {fixture.ENTERPRISE_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {fixture.ENTERPRISE_DB}")
    with psycopg.connect(enterprise, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE customers (id text PRIMARY KEY, name text, ssn text);"
            "CREATE TABLE orders (id int PRIMARY KEY, customer_id text, status text, total numeric);"
            "CREATE TABLE payments (id serial PRIMARY KEY, order_id int, amount numeric);"
            "CREATE TABLE warden_connector_log (key text PRIMARY KEY, response jsonb NOT NULL);"
        )
    apply_policy(from_document(load(fixture.POLICY)), actor="bench")
    credential = ServiceCredential(name="erp-admin", system=System.objects.get(name="erp"))
    credential.set_secret(enterprise)
    credential.save()

    from agents import sessions

    create, drop = [], []
    for _ in range(args.sessions):
        session, _ = sessions.start("order-bot", "order-desk", "bench", "system:bench")  # includes a create
        t0 = time.perf_counter()
        drop_session_roles(session)
        t1 = time.perf_counter()
        AgentSession.objects.filter(pk=session.pk).update(status="terminated")
        fresh = AgentSession.objects.create(
            agent=session.agent,
            workflow=session.workflow,
            workflow_version=1,
            trigger="bench",
            initiated_by="bench",
            expires_at=session.expires_at,
        )
        t2 = time.perf_counter()
        provision_session_roles(fresh)
        t3 = time.perf_counter()
        drop_session_roles(fresh)
        drop.append((t1 - t0) * 1000)
        create.append((t3 - t2) * 1000)
    total = [c + d for c, d in zip(create, drop)]
    print(f"create a session role : median {statistics.median(create):5.1f} ms  p99 {percentile(create, 0.99):5.1f} ms")
    print(f"drop a session role   : median {statistics.median(drop):5.1f} ms  p99 {percentile(drop, 0.99):5.1f} ms")
    print(
        f"create + drop         : median {statistics.median(total):5.1f} ms  p99 {percentile(total, 0.99):5.1f} ms"
        "  (target <= 30 ms median)"
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {fixture.ENTERPRISE_DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
