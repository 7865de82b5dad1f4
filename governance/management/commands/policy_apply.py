from __future__ import annotations

import getpass
import hashlib
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from governance.actors import Actor
from governance.policyfile import PolicyError, from_document, load, summary
from governance.services import Refused, policy_apply

ACTOR_MAX = 255  # the audit trail's actor column


class Command(BaseCommand):
    help = "Validate a YAML policy file, print the plan, and apply it in one transaction."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="policy file, or - for standard input")
        parser.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
        parser.add_argument(
            "--actor",
            default=f"cli:{getpass.getuser()}",
            help="who is applying, for the audit trail (default: cli:<os user>)",
        )

    def handle(self, *args: Any, file: str, dry_run: bool, actor: str, **options: Any) -> None:
        try:
            text = sys.stdin.read() if file == "-" else open(file, encoding="utf-8").read()
        except OSError as exc:
            self._fail([f"cannot read {file}: {exc.strerror}"], file)
        except UnicodeDecodeError:
            self._fail(["the file is not UTF-8 text"], file)
        if not actor.strip() or len(actor) > ACTOR_MAX or "\x00" in actor:
            self._fail([f"--actor must be 1 to {ACTOR_MAX} characters of text"], file)
        digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
        try:
            desired = from_document(load(text))
            changes = policy_apply(
                actor=Actor.cli(actor), desired=desired, dry_run=dry_run, source=f"{file} sha256:{digest}"
            )
        except PolicyError as exc:
            self._fail(exc.errors, file)
        except Refused as exc:
            self._fail(str(exc).split("; "), file)
        for change in changes:
            self.stdout.write(str(change))
        if not changes:
            self.stdout.write("No changes. The database already matches the policy.")
            return
        self.stdout.write(summary(changes))
        self.stdout.write("Dry run: nothing was applied." if dry_run else "Applied.")

    def _fail(self, errors: list[str], file: str) -> None:
        noun = "error" if len(errors) == 1 else "errors"
        self.stderr.write(f"{file}: {len(errors)} {noun}; nothing was applied")
        for error in errors:
            self.stderr.write(f"  {error}")
        sys.exit(1)
