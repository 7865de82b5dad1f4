"""Server-side prepared statements for the statements of the decision path (decision 0021).

Django's PostgreSQL cursors bind parameters on the client and never prepare, so every tool
call's token read and claim were parsed and planned again: measured on this machine, the
token read took 390 us as a client-bound statement and 145 us prepared. The few statements of
the hot path run here instead, on a server-binding psycopg cursor that prepares them once per
connection. The statements are the same; only how PostgreSQL receives them changes. Every other
query keeps Django's cursor.

Wrapped as Django wraps its own cursors, so query logging, CaptureQueriesContext (the round-trip
counts of bench/ and the tests), execute wrappers and database error translation still see them.
WARDEN_DB_PREPARED_STATEMENTS=0 turns this off, for a pooler in transaction mode that does not
keep prepared statements (PgBouncer before 1.21, or without max_prepared_statements); SQLite
has no prepared statements to gain and takes Django's cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


def fetchone(conn: BaseDatabaseWrapper, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """Run one statement (with %s placeholders) and return its first row, or None."""
    with cursor(conn) as c:
        c.execute(sql, params)
        row: tuple[Any, ...] | None = c.fetchone()
    return row


def cursor(conn: BaseDatabaseWrapper) -> Any:
    """A Django-wrapped cursor that prepares its statements on PostgreSQL (Django's otherwise)."""
    if conn.vendor != "postgresql" or not settings.WARDEN_DB_PREPARED_STATEMENTS:
        return conn.cursor()
    import psycopg

    conn.close_if_health_check_failed()
    conn.ensure_connection()
    raw = conn.connection
    assert raw is not None
    # Django turns preparation off per connection (prepare_threshold=None, for poolers). Only
    # server-binding cursors prepare, and this module makes the only ones, so turning it on
    # for this connection prepares these statements and nothing else. 0: from the first run.
    if raw.prepare_threshold is None:
        raw.prepare_threshold = 0
    conn.validate_thread_sharing()
    with conn.wrap_database_errors:
        server_binding = psycopg.Cursor(raw)
    return (_Logged if conn.queries_logged else CursorWrapper)(server_binding, conn)


class _Logged(CursorDebugWrapper):
    """Django's query log, with the statement as written: psycopg keeps no query text for an
    execution of a prepared statement, where Django's log would read it."""

    def execute(self, sql: Any, params: Any = None) -> Any:
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)
