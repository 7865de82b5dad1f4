"""Hardening item 8: on PostgreSQL, migrations run as an owner role and the app as a role that
can append to the audit trail but not alter or rewrite it; `check --deploy` says when the
runtime role could."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

import audit
from audit.db_roles import privileges_for, runtime_problems

pytestmark = [pytest.mark.postgres, pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parent.parent
OWNER, APP, SEQUENCER = "hardening_test_owner", "hardening_test_app", "hardening_test_sequencer"


def url_as(role: str) -> str:
    s = connection.settings_dict
    return f"postgres://{role}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def drop_roles(cursor) -> None:
    for role in (OWNER, APP, SEQUENCER):
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone():
            cursor.execute(f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')
            cursor.execute(f'DROP OWNED BY "{role}"')
            cursor.execute(f'DROP ROLE "{role}"')


@pytest.fixture
def roles() -> Iterator[None]:
    """Three login roles in the test database (loopback trust auth, as the test server has)."""
    with connection.cursor() as cursor:
        drop_roles(cursor)
        for role in (OWNER, APP, SEQUENCER):
            cursor.execute(f'CREATE ROLE "{role}" LOGIN')
    yield
    with connection.cursor() as cursor:
        drop_roles(cursor)


def manage(*args: str, role: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(DATABASE_URL=url_as(role), DJANGO_SETTINGS_MODULE="config.test_settings")
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_grants_cover_every_audit_table_generically() -> None:
    assert privileges_for("audit_auditevent") == ("SELECT", "INSERT")
    assert privileges_for("audit_merkle_leaf_added_later") == ("SELECT", "INSERT")
    assert privileges_for("agents_agentsession") == ("SELECT", "INSERT", "UPDATE", "DELETE")


def test_the_runtime_role_appends_but_cannot_alter_or_rewrite_the_trail(roles) -> None:
    audit.record("test.before", "system:test", outcome="ok")
    out = io.StringIO()
    call_command("db_roles", "--owner", OWNER, "--app", APP, "--sequencer", SEQUENCER, stdout=out)
    assert "GRANT SELECT, INSERT ON TABLE" in out.getvalue() and "audit_auditevent" in out.getvalue()
    call_command("db_roles", "--owner", OWNER, "--app", APP, "--sequencer", SEQUENCER, "--apply", stdout=io.StringIO())

    with psycopg.connect(url_as(APP), autocommit=True) as app:
        assert app.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] >= 1
        for statement in (
            "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only",
            "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL",
            "UPDATE audit_auditevent SET outcome = 'rewritten'",
            "DELETE FROM audit_auditevent",
            "TRUNCATE audit_auditevent",
            "DELETE FROM audit_checkpoint",
            "SET session_replication_role = replica",
            # Numbering is the sequencer's alone: one event put far ahead of the tree would stop it.
            "UPDATE audit_auditevent SET seq = 1000000000 WHERE seq IS NULL",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)
        owns, rewrites = runtime_problems(app.cursor())
        assert owns == [] and rewrites == []

    # The app still works as that role: it appends; the sequencer, as its own role, numbers and
    # checkpoints the events (UPDATE of seq alone), and the log verifies.
    appended = manage("shell", "-c", "import audit; audit.record('test.as_app', 'system:test', outcome='ok')", role=APP)
    assert appended.returncode == 0, appended.stderr
    script = "import audit; from audit.verify import verify; audit.sequence_now(); result = verify(); print('verified', result.ok, result.count)"
    ran = manage("shell", "-c", script, role=SEQUENCER)
    assert ran.returncode == 0, ran.stderr
    assert "verified True" in ran.stdout

    clean = manage("check", "--deploy", role=APP)
    assert "warden.E010" not in clean.stderr and "warden.E011" not in clean.stderr, clean.stderr


def test_check_deploy_reports_a_misconfigured_runtime_role(roles) -> None:
    call_command("db_roles", "--owner", OWNER, "--app", APP, "--sequencer", SEQUENCER, "--apply", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute(f'GRANT UPDATE, DELETE ON audit_auditevent TO "{APP}"')
    rewriting = manage("check", "--deploy", role=APP)
    assert rewriting.returncode != 0 and "warden.E011" in rewriting.stderr
    assert "audit_auditevent: UPDATE, DELETE" in rewriting.stderr

    with connection.cursor() as cursor:  # the single-role deployment the old Procfile made
        cursor.execute(f'ALTER TABLE audit_auditevent OWNER TO "{APP}"')
    owning = manage("check", "--deploy", role=APP)
    assert owning.returncode != 0 and "warden.E010" in owning.stderr and "audit_auditevent is owned by" in owning.stderr

    superuser = manage("check", "--deploy", role=connection.settings_dict["USER"] or "postgres")
    assert "warden.E010" in superuser.stderr and "superuser" in superuser.stderr


def test_db_roles_refuses_one_role_for_both(roles) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="both"):
        call_command("db_roles", "--owner", APP, "--app", APP, "--sequencer", SEQUENCER)
    with pytest.raises(CommandError, match="role of its own"):
        call_command("db_roles", "--owner", OWNER, "--app", APP, "--sequencer", APP)
    with pytest.raises(CommandError, match="--sequencer"):
        call_command("db_roles", "--owner", OWNER, "--app", APP)


def test_check_deploy_reports_an_app_role_that_may_number_events(roles) -> None:
    call_command("db_roles", "--owner", OWNER, "--app", APP, "--sequencer", SEQUENCER, "--apply", stdout=io.StringIO())
    with connection.cursor() as cursor:  # the two-role deployment of earlier releases
        cursor.execute(f'GRANT UPDATE (seq) ON audit_auditevent TO "{APP}"')
    numbering = manage("check", "--deploy", role=APP)
    assert numbering.returncode != 0 and "warden.E011" in numbering.stderr
    assert "audit_auditevent: UPDATE (seq)" in numbering.stderr
