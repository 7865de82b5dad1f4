from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.export import iter_csv, iter_jsonl, newest_checkpoint


class Command(BaseCommand):
    help = "Stream audit events as JSON lines or CSV to standard output."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
        parser.add_argument("--since", help="only events at or after this ISO 8601 time, e.g. 2026-11-01T00:00:00Z")
        parser.add_argument(
            "--proofs",
            action="store_true",
            help="JSON lines only: each event in the newest checkpoint with its inclusion proof and the checkpoint",
        )
        parser.add_argument("--size", type=int, help="with --proofs: prove against the checkpoint of this tree size")
        parser.add_argument("--checkpoint-out", help="with --proofs: also write the signed checkpoint to this file")

    def handle(
        self,
        *args: Any,
        format: str,
        since: str | None = None,
        proofs: bool = False,
        size: int | None = None,
        checkpoint_out: str | None = None,
        **options: Any,
    ) -> None:
        since_at = None
        if since:
            try:
                since_at = parse_datetime(since)
                if since_at is None and (day := parse_date(since)) is not None:
                    since_at = datetime(day.year, day.month, day.day)
            except ValueError:
                since_at = None
            if since_at is None:
                raise CommandError(f"--since: {since!r} is not an ISO 8601 date-time (try 2026-11-01T00:00:00Z)")
            if timezone.is_naive(since_at):
                since_at = timezone.make_aware(since_at, UTC)
        if proofs:
            if format != "jsonl":
                raise CommandError("--proofs needs --format jsonl")
            checkpoint = newest_checkpoint(size)
            if checkpoint is None:
                raise CommandError(f"no checkpoint of size {size}" if size else "no checkpoint has been signed yet")
            if checkpoint_out:
                with open(checkpoint_out, "w", encoding="utf-8") as handle:
                    handle.write(checkpoint.note)
            lines = iter_jsonl(since=since_at, proofs=checkpoint)
        else:
            lines = iter_jsonl(since=since_at) if format == "jsonl" else iter_csv(since=since_at)
        for chunk in lines:
            self.stdout.write(chunk, ending="")
