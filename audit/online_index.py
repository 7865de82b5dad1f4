"""Index changes that do not block writes, for migrations of tables on the tool call's path.

On PostgreSQL a plain CREATE INDEX or DROP INDEX holds a lock that blocks every INSERT into the
table until it is done, which on a large audit log stops the tool calls that write events
meanwhile. These run CONCURRENTLY there (in a migration with atomic = False), and plainly
elsewhere (SQLite), where Django's concurrent operations would refuse to run.

A migration of these is not atomic, so an interrupted `migrate` can leave some of its indexes
built and the migration unrecorded, or an index half-built (PostgreSQL marks it INVALID). Run
again, it keeps a valid index of the name it builds, rebuilds an invalid one, and drops an index
only if it exists: the operator just runs `migrate` again."""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations


class AddIndexOnline(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL, a plain CREATE INDEX elsewhere (SQLite)."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)
            return
        if _rebuild_needed(schema_editor, self.index.name):
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class RemoveIndexOnline(RemoveIndexConcurrently):
    """DROP INDEX CONCURRENTLY on PostgreSQL, a plain DROP INDEX elsewhere (SQLite)."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.RemoveIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != "postgresql":
            migrations.RemoveIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
        elif _rebuild_needed(schema_editor, self.name):
            super().database_backwards(app_label, schema_editor, from_state, to_state)


def _rebuild_needed(schema_editor: Any, name: str) -> bool:
    """Whether the index `name` must be built: it is missing, or INVALID (then it is dropped
    here first). A valid one was built by an earlier, interrupted run."""
    valid = _index_valid(schema_editor, name)
    if valid is False:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}")
    return not valid


def _index_valid(schema_editor: Any, name: str) -> bool | None:
    """Whether the index `name` is valid; None when there is none."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND pg_catalog.pg_table_is_visible(c.oid)",
            [name],
        )
        row = cursor.fetchone()
    return None if row is None else bool(row[0])
