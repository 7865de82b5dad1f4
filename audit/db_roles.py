"""Least-privilege PostgreSQL roles: an owner role runs migrations, the app runs as a role that
can append to the audit trail but never rewrite it.

The audit tables are every table whose name starts with `audit_`, whatever the audit app adds
later: the runtime role gets SELECT and INSERT on them and nothing else, with two exceptions.
The events table also grants UPDATE of its `seq` column alone, which the sequencer sets once
(the append-only trigger refuses every other change, and setting a seq that is already set);
the progress of verification runs is bookkeeping that holds no events and is updated in place. No audit table ever gets
DELETE, TRUNCATE, TRIGGER or REFERENCES, and the runtime role owns no table, so it cannot
`ALTER TABLE ... DISABLE TRIGGER`. Every other table gets ordinary read and write access.

`manage.py db_roles` prints (or applies) the statements; `check --deploy` reads the catalog
as the runtime role and fails when it could alter the audit trail (warden.E010, E011).
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
# Columns the runtime role may set on an audit table (the sequencer numbers events once).
AUDIT_COLUMN_UPDATES = {"audit_auditevent": ("seq",)}
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


def statements(cursor: Any, *, owner: str, app: str) -> list[sql.Composable]:
    """The statements that leave `owner` owning every table and `app` with exactly its privileges.
    Idempotent: the release step runs them after every migrate."""
    db = sql.Identifier
    out: list[sql.Composable] = []
    cursor.execute("SELECT current_database(), current_schema()")
    database, schema = cursor.fetchone()
    out.append(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db(database), db(app)))
    out.append(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(db(schema), db(app)))
    out.append(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(db(schema), db(app)))
    for table in tables(cursor):
        if table.owner != owner:
            out.append(sql.SQL("ALTER TABLE {} OWNER TO {}").format(db(table.name), db(owner)))
        out.append(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(db(table.name), db(app)))
        out.append(
            sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                sql.SQL(", ").join(sql.SQL(p) for p in privileges_for(table.name)), db(table.name), db(app)
            )
        )
        columns = AUDIT_COLUMN_UPDATES.get(table.name)
        if columns:
            out.append(
                sql.SQL("GRANT UPDATE ({}) ON TABLE {} TO {}").format(
                    sql.SQL(", ").join(db(c) for c in columns), db(table.name), db(app)
                )
            )
    out.append(sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(db(schema), db(app)))
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
    return owns, rewrites
