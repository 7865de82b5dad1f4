from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.credentials import RotationFailed, credential_rotate, credentials_due
from governance.models import ServiceCredential


class Command(BaseCommand):
    help = "Rotate service credentials now: those due (--due), all of them (--all), or one by NAME."

    def add_arguments(self, parser: CommandParser) -> None:
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--due", action="store_true", help="the credentials past their rotation period")
        group.add_argument("--all", action="store_true", help="every credential that has a secret")
        group.add_argument("name", nargs="?", help="one credential, by name")

    def handle(self, *args: Any, due: bool, all: bool, name: str | None, **options: Any) -> None:
        if name:
            credential = ServiceCredential.objects.filter(name=name).first()
            if credential is None:
                known = ", ".join(ServiceCredential.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"no service credential named {name!r} (known: {known})")
            targets = [credential]
        elif due:
            targets = credentials_due()
        else:
            targets = list(ServiceCredential.objects.exclude(secret_encrypted=""))
        if not targets:
            self.stdout.write("Nothing to rotate.")
            return
        failed = 0
        for credential in targets:
            try:
                credential_rotate(credential, actor="cli:credentials_rotate")
                self.stdout.write(f"rotated  {credential.name}")
            except RotationFailed as exc:
                failed += 1
                self.stderr.write(f"FAILED   {credential.name}: {exc} (the old secret is still in use)")
        self.stdout.write(f"{len(targets) - failed} rotated, {failed} failed.")
        if failed:
            sys.exit(1)
