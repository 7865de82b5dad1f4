from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

import audit
from agents.api.auth import api_token_create


class Command(BaseCommand):
    help = "Create a personal API token for a user (printed once), for reading the audit API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="what the token is for")
        parser.add_argument("--days", type=int, default=90, help="validity (default 90)")

    def handle(self, *args: Any, username: str, name: str, days: int, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user named {username!r}")
        if not 1 <= days <= 366:
            raise CommandError("--days must be between 1 and 366")
        token = api_token_create(user, name, days)
        audit.record(
            "provisioning.api_token_created",
            "cli:api_token_create",
            outcome="created",
            details={"user": username, "name": name, "prefix": token[:12], "days": days},
        )
        self.stdout.write(token)
        self.stderr.write("Store this token now: Warden keeps only its hash and cannot show it again.")
