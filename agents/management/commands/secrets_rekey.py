from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import models, transaction

import audit
from governance import crypto
from governance.models import ServiceCredential
from governance.secrets import backend


def _targets() -> list[tuple[str, type[models.Model], str, Callable[[str], str]]]:
    """Every encrypted value Warden keeps: (label, model, field, how to re-protect it)."""
    from agents.models import ActionRequest, SessionDatabaseRole

    return [
        ("service credentials", ServiceCredential, "secret_encrypted", backend().rekey),
        ("sealed tier 3 parameters", ActionRequest, "sealed_params", crypto.reencrypt),
        ("session database passwords", SessionDatabaseRole, "password_encrypted", crypto.reencrypt),
    ]


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret under the newest key in WARDEN_SECRET_KEYS. Runs row by row "
        "while Warden keeps running; afterwards the old keys can be removed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args: Any, quiet: bool = False, **options: Any) -> None:
        failed = done = 0
        for label, model, field, rekey in _targets():
            # _default_manager is `objects` on each of these models, and is typed on any Model.
            ids = list(model._default_manager.exclude(**{field: ""}).values_list("pk", flat=True))
            for position, pk in enumerate(ids, start=1):
                try:
                    # One short transaction a row: readers and writers are never held up for long.
                    with transaction.atomic():
                        row = (
                            model._default_manager.select_for_update()
                            .filter(pk=pk)
                            .values_list(field, flat=True)
                            .first()
                        )
                        if row:
                            model._default_manager.filter(pk=pk).update(**{field: rekey(row)})
                    done += 1
                except crypto.SecretUnreadable:
                    failed += 1
                    self.stderr.write(f"\n{label}: row {pk} cannot be decrypted with any key in WARDEN_SECRET_KEYS")
                if not quiet:
                    filled = int(30 * position / len(ids))
                    self.stderr.write(
                        f"\r{label:<28} [{'#' * filled}{'.' * (30 - filled)}] {position}/{len(ids)}", ending=""
                    )
            if not quiet and ids:
                self.stderr.write("")
        audit.record(
            "secrets.rekeyed",
            "cli:secrets_rekey",
            outcome="failed" if failed else "rekeyed",
            details={"rekeyed": done, "unreadable": failed},
        )
        self.stdout.write(f"{done} secrets re-encrypted under the newest key, {failed} unreadable.")
        if failed:
            sys.exit(1)
