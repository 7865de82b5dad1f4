"""Per-session database credentials against the real PostgreSQL: the database itself enforces
the access map, and the role dies with the session."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection

from agents import gateway, sessions, tasks
from agents.connectors.postgres import ROLE_PREFIX, _dsn_for_role, role_name
from agents.models import SessionDatabaseRole
from governance import crypto
from governance.models import ServiceCredential, System
from governance.policyfile import apply_policy, from_document, load

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.django_db]

ENTERPRISE_DB = "warden_enterprise_test"
POLICY = """
version: 1
systems:
  - name: erp
    connector: postgres
    config:
      tables:
        erp.customer: {table: public.customers, columns: [id, name]}
        erp.order: {table: public.orders}
        erp.payment: {table: public.payments}
      actions:
        erp.get_customer: {op: select, data_object: erp.customer}
        erp.list_orders: {op: select, data_object: erp.order}
        erp.set_order_status: {op: update, data_object: erp.order, key: [id], set: [status]}
        erp.record_payment: {op: insert, data_object: erp.payment}
data_objects:
  - {name: erp.customer, system: erp, sensitivity: restricted, fields: {ssn: pii.ssn}}
  - {name: erp.order, system: erp, sensitivity: internal}
  - {name: erp.payment, system: erp, sensitivity: confidential}
action_types:
  - {name: erp.get_customer, system: erp, mode: read, data_objects: [erp.customer]}
  - {name: erp.list_orders, system: erp, mode: read, data_objects: [erp.order]}
  - {name: erp.set_order_status, system: erp, mode: write, data_objects: [erp.order]}
  - {name: erp.record_payment, system: erp, mode: write, data_objects: [erp.payment]}
context_rules:
  - {data_type: pii.ssn, handling: never, persist: false}
workflows:
  - name: order-desk
    destinations: [{type: initiator, clearance: restricted}]
    access:
      - {data_object: erp.customer, mode: read}
      - {data_object: erp.order, mode: read}
      - {data_object: erp.order, mode: write}
    tiers:
      - {action: erp.get_customer, tier: 1}
      - {action: erp.list_orders, tier: 1}
      - {action: erp.set_order_status, tier: 1}
agents:
  - {name: order-bot, owner: ops@example.com, workflows: [order-desk]}
"""


def admin_dsn(dbname: str = ENTERPRISE_DB) -> str:
    db = connection.settings_dict
    return f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{dbname}"


@pytest.fixture
def enterprise() -> Iterator[str]:
    with psycopg.connect(admin_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {ENTERPRISE_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {ENTERPRISE_DB}")
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE customers (id text PRIMARY KEY, name text, ssn text);
            CREATE TABLE orders (id int PRIMARY KEY, customer_id text, status text, total numeric);
            CREATE TABLE payments (id serial PRIMARY KEY, order_id int, amount numeric);
            CREATE TABLE warden_connector_log (key text PRIMARY KEY, response jsonb NOT NULL);
            INSERT INTO customers VALUES ('K-1', 'Ada', '111-22-3333'), ('K-2', 'Grace', '222-33-4444');
            INSERT INTO orders VALUES (1, 'K-1', 'open', 120), (2, 'K-2', 'open', 80);
            INSERT INTO payments (order_id, amount) VALUES (1, 120);
        """)
    apply_policy(from_document(load(POLICY)), actor="test")
    credential = ServiceCredential(name="erp-admin", system=System.objects.get(name="erp"), scope="admin")
    credential.set_secret(admin_dsn())
    credential.save()
    yield ENTERPRISE_DB
    with psycopg.connect(admin_dsn("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {ENTERPRISE_DB} WITH (FORCE)")
        for (role,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'warden\\_s\\_%'").fetchall():
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def session_connection(record: SessionDatabaseRole) -> psycopg.Connection:
    return psycopg.connect(
        _dsn_for_role(admin_dsn(), record.role, crypto.decrypt(record.password_encrypted)), autocommit=True
    )


def roles_left() -> list[str]:
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        return [r for (r,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'warden\\_s\\_%'")]


def test_the_session_role_reads_what_is_mapped_and_postgres_refuses_the_rest(enterprise) -> None:
    session, token = sessions.start("order-bot", "order-desk", "test", "user:dana")
    record = SessionDatabaseRole.objects.get(session=session)
    assert record.role == role_name(session.pk) and record.role in roles_left()
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        valid_until = conn.execute("SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", [record.role]).fetchone()[0]
    assert abs((valid_until - session.expires_at).total_seconds()) < 1
    orders = gateway.authorize(token, "erp.list_orders", {"status": "open"})
    assert orders.executed and len(orders.result["data"]) == 2
    customer = gateway.authorize(token, "erp.get_customer", {"id": "K-1"})
    assert customer.status == "failed"  # SELECT * touches ssn: the column grant refuses it
    assert "permission denied" in customer.error

    session2, token2 = sessions.start("order-bot", "order-desk", "test", "user:dana")
    record2 = SessionDatabaseRole.objects.get(session=session2)
    with session_connection(record2) as conn:
        assert conn.execute("SELECT id, name FROM customers ORDER BY id").fetchall() == [
            ("K-1", "Ada"),
            ("K-2", "Grace"),
        ]
        for statement in (
            "SELECT ssn FROM customers",
            "SELECT * FROM payments",
            "INSERT INTO customers (id, name) VALUES ('K-9', 'Eve')",
            "INSERT INTO payments (order_id, amount) VALUES (2, 1)",
            "DELETE FROM orders",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        conn.execute("UPDATE orders SET status = 'held' WHERE id = 2")  # mapped as write
    updated = gateway.authorize(token2, "erp.set_order_status", {"id": 1, "status": "shipped"}, tool_use_id="u1")
    assert updated.executed and updated.result["data"] == {"rows": 1}


def test_termination_drops_the_role_and_verifies_it_cannot_log_in(enterprise) -> None:
    session, token = sessions.start("order-bot", "order-desk", "test", "user:dana")
    record = SessionDatabaseRole.objects.get(session=session)
    ended = sessions.terminate(session, reason="done", actor="user:dana")
    assert ended.termination_verified
    assert not [r for r in roles_left() if r == record.role]
    with pytest.raises(psycopg.OperationalError):
        session_connection(record)
    record.refresh_from_db()
    assert record.dropped_at is not None


def test_the_sweeper_reaps_a_role_left_by_a_crashed_session(enterprise) -> None:
    with psycopg.connect(admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{ROLE_PREFIX}deadbeefdeadbeef" LOGIN')
    session, _ = sessions.start("order-bot", "order-desk", "test", "user:dana")
    assert f"{ROLE_PREFIX}deadbeefdeadbeef" in roles_left()
    assert tasks.sweep()["roles_reaped"] == 1
    assert roles_left() == [role_name(session.pk)]  # the live session keeps its role


def test_a_session_cannot_start_without_its_database_role(enterprise) -> None:
    credential = ServiceCredential.objects.get(name="erp-admin")
    credential.set_secret("postgresql://nobody@127.0.0.1:1/none")
    credential.save()
    with pytest.raises(sessions.SessionRefused, match="database credentials could not be made"):
        sessions.start("order-bot", "order-desk", "test", "user:dana")
