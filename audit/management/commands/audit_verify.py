from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit.chain import verify
from audit.checkpoints import verify_checkpoints


class Command(BaseCommand):
    help = "Recompute the audit hash chain. Exit 0 when it holds; exit 1 and name the first bad seq when not."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="print only the result line")
        parser.add_argument(
            "--checkpoints",
            action="store_true",
            help="also check every signed checkpoint: proves no tail was cut off after it",
        )

    def handle(self, *args: Any, quiet: bool = False, checkpoints: bool = False, **options: Any) -> None:
        show_progress = not quiet and sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            if show_progress and total:
                self.stderr.write(f"\rverifying {done}/{total} ({done * 100 // total}%)", ending="")

        result = verify(progress=progress)
        if show_progress:
            self.stderr.write("")
        if result.ok and checkpoints:
            signed = verify_checkpoints()
            if not signed.ok:
                self.stderr.write(
                    f"audit chain BROKEN at seq {signed.first_bad_seq}: {signed.message} "
                    f"({signed.checked} checkpoints verified before it)"
                )
                sys.exit(1)
            self.stdout.write(
                f"audit chain OK: {result.count} events verified (last seq {result.last_seq}); "
                f"{signed.checked} signed checkpoints hold"
            )
            return
        if result.ok:
            self.stdout.write(f"audit chain OK: {result.count} events verified (last seq {result.last_seq})")
            return
        self.stderr.write(
            f"audit chain BROKEN at seq {result.first_bad_seq}: {result.message} "
            f"({result.count} events verified before it)"
        )
        sys.exit(1)
