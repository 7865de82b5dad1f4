from __future__ import annotations

import getpass
import hashlib
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from governance.actors import Actor
from governance.policyfile import PolicyError, from_database, from_document, load, summary
from governance.policyfile.state import package_of
from governance.services import PolicyRefused, Refused, policy_apply

ACTOR_MAX = 255  # the audit trail's actor column


class Command(BaseCommand):
    help = "Validate a YAML policy file, print the plan, and apply it in one transaction."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="policy file, or - for standard input")
        parser.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
        parser.add_argument(
            "--allow-delete",
            action="store_true",
            help="let the plan delete, archive or deprovision what the file's package no longer declares",
        )
        parser.add_argument(
            "--actor",
            default=f"cli:{getpass.getuser()}",
            help="who is applying, for the audit trail (default: cli:<os user>)",
        )

    def handle(self, *args: Any, file: str, dry_run: bool, allow_delete: bool, actor: str, **options: Any) -> None:
        try:
            text = sys.stdin.read() if file == "-" else open(file, encoding="utf-8").read()
        except OSError as exc:
            self._fail([f"cannot read {file}: {exc.strerror}"], file)
        except UnicodeDecodeError:
            self._fail(["the file is not UTF-8 text"], file)
        if not actor.strip() or len(actor) > ACTOR_MAX or "\x00" in actor:
            self._fail([f"--actor must be 1 to {ACTOR_MAX} characters of text"], file)
        digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
        name = "<stdin>" if file == "-" else file
        try:
            doc = load(text, filename=name, current=from_database())
            changes = policy_apply(
                actor=Actor.cli(actor),
                desired=from_document(doc),
                dry_run=dry_run,
                source=f"{file} sha256:{digest}",
                package=package_of(doc),
                allow_delete=allow_delete,
            )
        except PolicyError as exc:
            self._fail(exc.errors, file)
        except PolicyRefused as exc:
            self._print(exc.changes)
            self._fail([e if e.startswith(name) else f"{name}: {e}" for e in exc.errors], file)
        except Refused as exc:
            self._fail(str(exc).split("; "), file)
        if not changes:
            self.stdout.write("No changes. The database already matches the policy.")
            return
        self._print(changes)
        self.stdout.write(summary(changes))
        self.stdout.write("Dry run: nothing was applied." if dry_run else "Applied.")

    def _print(self, changes: list[Any]) -> None:
        for change in changes:
            self.stdout.write(str(change))
            for line in change.diff:
                self.stdout.write(f"    {line}")

    def _fail(self, errors: list[str], file: str) -> None:
        noun = "error" if len(errors) == 1 else "errors"
        self.stderr.write(f"{file}: {len(errors)} {noun}; nothing was applied")
        for error in errors:
            self.stderr.write(f"  {error}")
        sys.exit(1)
