"""The audit browser's filters each have an index that leads with their column (audit.search),
and the indexes that only the browser reads cover sequenced events alone, so that writing an
event on a tool call's path enters none of them (decision 0022)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.http import QueryDict

import audit
from audit.search import filtered

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

BROWSER_ONLY = ("kind", "actor", "workflow", "system", "outcome", "action")


def _indexes() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_auditevent'")
        return dict(cursor.fetchall())


def test_the_browser_only_indexes_leave_unsequenced_events_out() -> None:
    indexes = _indexes()
    for column in BROWSER_ONLY:
        definition = indexes[f"audit_{column}_sequenced"]
        assert f"({column}, seq)" in definition and definition.endswith("WHERE (seq IS NOT NULL)"), definition
    # A session's events are read before the sequencer numbers them too: that index stays whole.
    assert "WHERE" not in indexes["audit_session_seq"]
    assert not [name for name in indexes if name.endswith("_seq") and name != "audit_session_seq"], indexes


@pytest.mark.parametrize("column", [*BROWSER_ONLY, "session"])
def test_every_column_filter_of_the_browser_uses_its_index(column: str) -> None:
    audit.record("test.indexed", "system:test", outcome="ok", details={})
    query = QueryDict(mutable=True)
    query[column] = "x"
    events, _, errors = filtered(query)
    assert not errors
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the table is tiny: ask what could be used
        plan = events.order_by("-seq")[:101].explain()
    expected = "audit_session_seq" if column == "session" else f"audit_{column}_sequenced"
    assert expected in plan, plan


RERUN = r"""
import django

django.setup()
from django.core.management import call_command
from django.db import connection

call_command("migrate", "audit", "0005", verbosity=0)
with connection.cursor() as cursor:
    # An interrupted run of 0006: one new index built, one left INVALID (a unique build that
    # failed on duplicate rows stands in for a build cut short), the migration unrecorded.
    cursor.execute("CREATE INDEX audit_kind_sequenced ON audit_auditevent (kind, seq) WHERE seq IS NOT NULL")
    for _ in range(2):
        cursor.execute(
            "INSERT INTO audit_auditevent (at, kind, actor, session, workflow, system, data_type, action, outcome,"
            " details, hash, legacy_prev_hash, legacy_hmac) VALUES (now(), 'k', 'same', '', '', '', '', '', 'ok',"
            " '{}', '', '', '')"
        )
try:
    with connection.cursor() as cursor:
        cursor.execute("CREATE UNIQUE INDEX CONCURRENTLY audit_actor_sequenced ON audit_auditevent (actor)")
except Exception:
    pass
with connection.cursor() as cursor:
    cursor.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'audit_actor_sequenced'::regclass")
    assert cursor.fetchone() == (False,)
call_command("migrate", verbosity=0)
with connection.cursor() as cursor:
    cursor.execute(
        "SELECT c.relname, i.indisvalid, i.indisunique FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname LIKE 'audit\\_%%\\_sequenced'"
    )
    found = {name: (valid, unique) for name, valid, unique in cursor.fetchall()}
assert found == {f"audit_{c}_sequenced": (True, False) for c in ("kind", "actor", "workflow", "system", "outcome", "action")}, found
print("migrated again")
"""


@pytest.mark.integration
def test_an_interrupted_index_migration_completes_when_run_again(tmp_path) -> None:
    """README, Operating: run `migrate` again; it keeps what was built and rebuilds what
    PostgreSQL left INVALID. On a database of its own: the test database is migrated already."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import psycopg

    db = connection.settings_dict
    host, port, user = db["HOST"] or "127.0.0.1", db["PORT"] or 5432, db["USER"]
    name = f"{db['NAME']}_rerun"
    with psycopg.connect(host=host, port=port, user=user, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{user}@{host}:{port}/{name}",
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "WARDEN_DATA_DIR": str(tmp_path),
        "WARDEN_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "PYTHONPATH": str(root),
    }
    try:
        result = subprocess.run(
            [sys.executable, "-c", RERUN], cwd=root, env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        with psycopg.connect(host=host, port=port, user=user, dbname="postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert result.returncode == 0, result.stderr[-3000:]
    assert "migrated again" in result.stdout


@pytest.mark.parametrize("kinds", [{"kind": "session.started"}, {"kind__in": ["action.allowed", "action.executed"]}])
def test_recertification_reads_an_agents_use_through_the_indexes(kinds) -> None:
    """Its last use and the use of each grant: the sequenced events through the kind index, the
    few not yet numbered through the sequencer's own (none is left out, none costs a scan)."""
    from governance.recertification import _sequenced_then_pending

    sequenced, pending = _sequenced_then_pending(details__agent="refund-bot", **kinds)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plans = [sequenced.reverse()[:1].explain(), pending.reverse()[:1].explain()]
    assert "audit_kind_sequenced" in plans[0], plans[0]
    assert "audit_unsequenced" in plans[1], plans[1]
