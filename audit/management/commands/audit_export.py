from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.export import iter_csv, iter_jsonl


class Command(BaseCommand):
    help = "Stream audit events as JSON lines or CSV to standard output."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
        parser.add_argument("--since", help="only events at or after this ISO 8601 time, e.g. 2026-11-01T00:00:00Z")

    def handle(self, *args: Any, format: str, since: str | None = None, **options: Any) -> None:
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
        lines = iter_jsonl(since=since_at) if format == "jsonl" else iter_csv(since=since_at)
        for chunk in lines:
            self.stdout.write(chunk, ending="")
