from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from governance.policyfile import export_yaml, from_database
from governance.policyfile.state import packages


class Command(BaseCommand):
    help = "Write one policy package as a YAML file that policy_apply accepts unchanged."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("-o", "--output", help="write to this file instead of standard output")
        parser.add_argument(
            "--package",
            default=None,
            help="the package to export (default: the only package there is, else the objects of no package)",
        )

    def handle(self, *args: Any, output: str | None = None, package: str | None = None, **options: Any) -> None:
        state = from_database()
        present = packages(state)
        if package is None:
            package = next(iter(present)) if len(present) == 1 else ""
        if package and package not in present:
            shown = ", ".join(p or "(default)" for p in sorted(present)) or "none"
            raise CommandError(f"no object belongs to package {package!r} (packages: {shown})")
        text = export_yaml(package, state=state)
        others = sorted(p for p in present if p != package)
        if others:
            shown = ", ".join(p or "(default)" for p in others)
            self.stderr.write(f"left out: other packages ({shown}); export each with --package NAME")
        if not output:
            self.stdout.write(text, ending="")
            return
        try:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror}") from None
        self.stderr.write(f"wrote {output}")
