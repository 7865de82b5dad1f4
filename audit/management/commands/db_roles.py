from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from audit.db_roles import statements


def _user_of(url: str) -> str:
    return unquote(urlsplit(url).username or "") if url else ""


class Command(BaseCommand):
    help = (
        "Print (or --apply) the PostgreSQL statements for least-privilege roles: OWNER owns every table "
        "(migrations run as it), APP gets SELECT and INSERT on the audit_* tables and read/write elsewhere, "
        "SEQUENCER gets the same plus UPDATE of the events' seq. "
        "Run as the owner (WARDEN_DB_AS_OWNER=1) or as a superuser."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--owner", help="the owner role (default: the role this command connects as)")
        parser.add_argument("--app", help="the runtime role (default: the user in DATABASE_URL)")
        parser.add_argument(
            "--sequencer", help="the audit sequencer's role (default: the user in WARDEN_SEQUENCER_DATABASE_URL)"
        )
        parser.add_argument("--apply", action="store_true", help="run the statements instead of printing them")

    def handle(
        self, *args: Any, owner: str | None, app: str | None, sequencer: str | None, apply: bool, **options: Any
    ) -> None:
        if connection.vendor != "postgresql":
            self.stdout.write("The database is not PostgreSQL: it has no roles, nothing to do.")
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            owner = owner or cursor.fetchone()[0]
            app = app or _user_of(settings.DATABASE_URL)
            if not app:
                raise CommandError("name the runtime role with --app (DATABASE_URL names no user)")
            if app == owner:
                raise CommandError(
                    f"the runtime role and the owner are both {app!r}: the app would own the audit tables. "
                    "Set MIGRATE_DATABASE_URL to an owner role and run this with WARDEN_DB_AS_OWNER=1, or name "
                    "both roles with --owner and --app."
                )
            sequencer = sequencer or _user_of(settings.WARDEN_SEQUENCER_DATABASE_URL)
            if not sequencer:
                raise CommandError(
                    "name the audit sequencer's role with --sequencer or WARDEN_SEQUENCER_DATABASE_URL: only it may "
                    "number audit events, so the app role cannot (see README, Deployment roles)"
                )
            if sequencer in (owner, app):
                raise CommandError(
                    f"the sequencer role {sequencer!r} is also the {'owner' if sequencer == owner else 'app'} role: "
                    "give the sequencer a role of its own"
                )
            for role in (owner, app, sequencer):
                cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
                if cursor.fetchone() is None:
                    raise CommandError(f"there is no role {role!r}: create it first (see README, Deployment roles)")
            todo = [
                s.as_string(cursor.connection) for s in statements(cursor, owner=owner, app=app, sequencer=sequencer)
            ]
            if not apply:
                self.stdout.write("\n".join(f"{s};" for s in todo))
                return
            try:
                with transaction.atomic():
                    for statement in todo:
                        cursor.execute(statement)
            except Exception as exc:  # noqa: BLE001 - reported with the way out
                raise CommandError(
                    f"{type(exc).__name__}: {exc}. Tables owned by another role (for example the app role, "
                    f"after migrations ran as it) need, once, as a superuser: REASSIGN OWNED BY {app} TO {owner};"
                ) from None
        self.stdout.write(
            f"{len(todo)} statements applied: {owner!r} owns the tables, {app!r} and {sequencer!r} have their grants."
        )
