"""Least-privilege PostgreSQL roles: an owner role runs migrations, the app runs as a role that
can append to the audit trail but never rewrite it, and the sequencer runs as a third role, the
only one that may number events.

The audit tables are every table whose name starts with `audit_`, whatever the audit app adds
later: the runtime role gets SELECT and INSERT on them and nothing else, except the progress of
verification runs, bookkeeping that holds no events and is updated in place. The sequencer role
has the app's grants plus UPDATE of the events' `seq` column alone, which it sets once (the
append-only trigger refuses every other change, and setting a seq that is already set). The app
does not get that column: a role that may set `seq` can set it to any value, and one event put
far ahead of the tree would stop the sequencer for good. No audit table ever gets DELETE,
TRUNCATE, TRIGGER or REFERENCES, and neither role owns a table, so neither can
`ALTER TABLE ... DISABLE TRIGGER`. Every other table gets ordinary read and write access.

`manage.py db_roles` prints (or applies) the statements; `check --deploy` reads the catalog
as the runtime role and fails when it could alter the audit trail or number events (warden.E010,
E011).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

AUDIT_PREFIX = "audit_"
AUDIT_LIKE = r"audit\_%"
# Audit tables the app updates in place. They hold no events: a forged chain head is caught by
# verification against the events and the signed checkpoints.
AUDIT_BOOKKEEPING = frozenset({"audit_verificationrun"})
# Columns only the sequencer role may set on an audit table (it numbers events once).
SEQUENCER_COLUMN_UPDATES = {"audit_auditevent": ("seq",)}
READ_ONLY = frozenset({"django_migrations"})
FORBIDDEN_ON_AUDIT = ("DELETE", "TRUNCATE", "TRIGGER", "REFERENCES")


def is_audit_table(name: str) -> bool:
    return name.startswith(AUDIT_PREFIX)


def privileges_for(table: str) -> tuple[str, ...]:
    """What the runtime role may do to one table."""
    if is_audit_table(table):
        return ("SELECT", "INSERT", "UPDATE") if table in AUDIT_BOOKKEEPING else ("SELECT", "INSERT")
    if table in READ_ONLY:
        return ("SELECT",)
    return ("SELECT", "INSERT", "UPDATE", "DELETE")


@dataclass(frozen=True)
class Table:
    name: str
    owner: str


def tables(cursor: Any) -> list[Table]:
    cursor.execute(
        "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() ORDER BY c.relname"
    )
    return [Table(name, owner) for name, owner in cursor.fetchall()]


def statements(cursor: Any, *, owner: str, app: str, sequencer: str) -> list[sql.Composable]:
    """The statements that leave `owner` owning every table, `app` with exactly its privileges, and
    `sequencer` with the app's plus the numbering of events. Idempotent: the release step runs
    them after every migrate."""
    db = sql.Identifier
    out: list[sql.Composable] = []
    cursor.execute("SELECT current_database(), current_schema()")
    database, schema = cursor.fetchone()
    for role in (app, sequencer):
        out.append(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db(database), db(role)))
        out.append(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(db(schema), db(role)))
        out.append(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(db(schema), db(role)))
    for table in tables(cursor):
        if table.owner != owner:
            out.append(sql.SQL("ALTER TABLE {} OWNER TO {}").format(db(table.name), db(owner)))
        for role in (app, sequencer):
            out.append(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(db(table.name), db(role)))
            out.append(
                sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                    sql.SQL(", ").join(sql.SQL(p) for p in privileges_for(table.name)), db(table.name), db(role)
                )
            )
        columns = SEQUENCER_COLUMN_UPDATES.get(table.name)
        if columns:
            out.append(
                sql.SQL("GRANT UPDATE ({}) ON TABLE {} TO {}").format(
                    sql.SQL(", ").join(db(c) for c in columns), db(table.name), db(sequencer)
                )
            )
    for role in (app, sequencer):
        out.append(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(db(schema), db(role)))
    return out


def runtime_problems(cursor: Any) -> tuple[list[str], list[str]]:
    """What the current role could do to the audit trail that the app must not be able to:
    (ways it could alter or own the tables, ways it could rewrite their rows)."""
    cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
    user, superuser = cursor.fetchone()
    owns: list[str] = []
    rewrites: list[str] = []
    if superuser:
        owns.append(f"the runtime role {user!r} is a superuser")
    checks = ", ".join(f"has_table_privilege(c.oid, '{p}')" for p in ("UPDATE", *FORBIDDEN_ON_AUDIT))
    cursor.execute(
        "SELECT c.relname, pg_get_userbyid(c.relowner), pg_has_role(c.relowner, 'USAGE'), "
        f"{checks} FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(current_schemas(false)) AND c.relname LIKE %s "
        "ORDER BY c.relname",
        [AUDIT_LIKE],
    )
    for name, table_owner, is_owner, update, *forbidden in cursor.fetchall():
        if is_owner and not superuser:
            owns.append(f"{name} is owned by {table_owner!r}, which the runtime role {user!r} is or belongs to")
        granted = [p for p, has in zip(FORBIDDEN_ON_AUDIT, forbidden, strict=True) if has]
        if update and name not in AUDIT_BOOKKEEPING:
            granted.insert(0, "UPDATE")
        if granted and not superuser:
            rewrites.append(f"{name}: {', '.join(granted)}")
    for name, columns in SEQUENCER_COLUMN_UPDATES.items():
        for column in columns:
            cursor.execute(
                "SELECT has_column_privilege(c.oid, %s, 'UPDATE') FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relname = %s AND n.nspname = ANY(current_schemas(false))",
                [column, name],
            )
            row = cursor.fetchone()
            if row and row[0] and not superuser:
                rewrites.append(f"{name}: UPDATE ({column}), which only the sequencer role may have")
    return owns, rewrites
