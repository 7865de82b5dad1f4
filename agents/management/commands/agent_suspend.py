from __future__ import annotations

import getpass
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from agents.models import AgentSession
from governance.actors import Actor
from governance.models import AgentIdentity
from governance.services import Refused, agent_identity_suspend


class Command(BaseCommand):
    help = "The kill switch: suspend an agent identity and end every live session of it, now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("agent", help="the agent identity's name")
        parser.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
        parser.add_argument("--actor", default=getpass.getuser(), help="who is suspending it (recorded as cli:<actor>)")

    def handle(self, *args: Any, agent: str, reason: str, actor: str, **options: Any) -> None:
        identity = AgentIdentity.objects.filter(name=agent).first()
        if identity is None:
            self.stderr.write(f"there is no agent identity {agent!r}")
            sys.exit(2)
        live = AgentSession.objects.filter(agent=identity, status__in=AgentSession.LIVE).count()
        try:
            agent_identity_suspend(actor=Actor.cli(actor), agent=identity, reason=reason)
        except Refused as exc:
            self.stderr.write(str(exc))
            sys.exit(2)
        self.stdout.write(f"{agent} is suspended; {live} live session(s) ended")
