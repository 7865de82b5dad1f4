from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

import audit
from agents.api.auth import agent_key_create
from agents.models import AgentKey
from governance.models import AgentIdentity


class Command(BaseCommand):
    help = "Create an agent key for the decision API (printed once). --revoke-others rotates."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("agent")
        parser.add_argument("--revoke-others", action="store_true", help="revoke the agent's earlier keys")

    def handle(self, *args: Any, agent: str, revoke_others: bool, **options: Any) -> None:
        identity = AgentIdentity.objects.filter(name=agent).first()
        if identity is None:
            raise CommandError(f"no agent identity named {agent!r}")
        if identity.status != AgentIdentity.Status.ACTIVE:
            raise CommandError(f"agent {agent!r} is {identity.status}")
        if revoke_others:
            AgentKey.objects.filter(agent=identity, revoked_at__isnull=True).update(revoked_at=timezone.now())
        key = agent_key_create(identity)
        audit.record(
            "provisioning.agent_key_created",
            "cli:agent_key_create",
            outcome="created",
            details={"agent": agent, "prefix": key[:12], "revoked_others": revoke_others},
        )
        self.stdout.write(key)
        self.stderr.write("Store this key now: Warden keeps only its hash and cannot show it again.")
