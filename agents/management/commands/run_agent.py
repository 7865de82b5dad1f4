from __future__ import annotations

import getpass
import sys
import time
import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from agents.models import ActionRequest, AgentSession
from agents.services import session_queue_run
from agents.sessions import SessionRefused

FINAL_EXIT = {"completed": 0, "handed_off": 3, "terminated": 4}
REJECTED_EXIT = 6  # a reviewer rejected an action of the run (whatever the session did next)


class Command(BaseCommand):
    help = "Start a session for an agent through Celery; with --wait, follow it step by step."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--agent", required=True)
        parser.add_argument("--workflow", required=True)
        parser.add_argument("--input", required=True, help="the task for the agent")
        parser.add_argument("--wait", action="store_true", help="print each step and the final status")
        parser.add_argument("--timeout", type=float, default=300, help="seconds to wait with --wait (default 300)")
        parser.add_argument(
            "--scope",
            default="",
            help="a YAML or JSON file that narrows the session (actions, and constraints on their parameters)",
        )
        parser.add_argument(
            "--trigger-data",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a value of the trigger that the workflow's scope template binds (repeatable), "
            "e.g. --trigger-data ticket_id=T-2002",
        )
        parser.add_argument(
            "--initiator",
            default="",
            help="your Warden account (username or email): recorded as the initiator, who can never "
            "approve the run's actions (default: the account named like your OS user, else cli:<os user>)",
        )

    def handle(
        self,
        *args: Any,
        agent: str,
        workflow: str,
        input: str,
        wait: bool,
        timeout: float,
        initiator: str,
        scope: str,
        trigger_data: list[str],
        **o: Any,
    ) -> None:
        if not input.strip():
            self._fail("--input: give the agent a task")
        narrowed = self._scope(scope) if scope else None
        data = {}
        for pair in trigger_data:
            name, sep, value = pair.partition("=")
            if not sep or not name.strip():
                self._fail(f"--trigger-data: {pair!r} is not NAME=VALUE")
            data[name.strip()] = value
        initiated_by = self._initiator(initiator)
        try:
            session = session_queue_run(
                agent=agent,
                workflow=workflow,
                input=input,
                trigger="cli",
                initiated_by=initiated_by,
                scope=narrowed,
                trigger_data=data or None,
            )
        except SessionRefused as exc:
            self._fail(f"session refused: {exc}")
        self.stdout.write(f"session {session.pk} queued ({agent} on {workflow})")
        if not wait:
            return
        self._follow(session, timeout)

    def _scope(self, path: str) -> dict[str, Any]:
        import yaml

        try:
            with open(path, encoding="utf-8") as handle:
                loaded = yaml.safe_load(handle)
        except OSError as exc:
            self._fail(f"--scope: cannot read {path}: {exc.strerror}")
        except yaml.YAMLError as exc:
            self._fail(f"--scope: {path} is not YAML or JSON ({exc})")
        if not isinstance(loaded, dict):
            self._fail(f"--scope: {path} must hold a mapping (actions, constraints)")
        return loaded

    def _initiator(self, name: str) -> str:
        """Initiators are identities: a CLI run is recorded as the Warden account of the person
        who started it, so separation of duties recognises them on the approval page."""
        from django.contrib.auth import get_user_model
        from django.db.models import Q

        from audit.chain import label

        User = get_user_model()
        if name:
            user = User.objects.filter(Q(username=name) | Q(email__iexact=name)).first()
            if user is None:
                self._fail(f"--initiator: there is no Warden account {name!r}")
            return label(user)
        os_user = getpass.getuser()
        user = User.objects.filter(username=os_user).first()
        return label(user) if user is not None else f"cli:{os_user}"

    def _follow(self, session: AgentSession, timeout: float) -> None:
        deadline, last_status = time.monotonic() + timeout, ""
        shown: dict[uuid.UUID, str] = {}  # action request -> the status last printed
        rejected = False
        while time.monotonic() < deadline:
            for ar in ActionRequest.objects.filter(session=session).order_by("created_at"):
                if shown.get(ar.pk) != ar.status:
                    shown[ar.pk] = ar.status
                    tier = f"tier {ar.tier}" if ar.tier else "no tier"
                    self.stdout.write(f"  {ar.action:<28} {tier:<8} {ar.status}")
                    if ar.status == ActionRequest.Status.REJECTED:
                        rejected = True
                        self.stdout.write(f"  ... rejected by a reviewer: {ar.decided_reason}")
                    elif ar.status in (ActionRequest.Status.DENIED, ActionRequest.Status.REFUSED) and ar.reason:
                        self.stdout.write(f"  ... {ar.status}: {ar.reason}")
            session.refresh_from_db()
            if session.status != last_status:
                last_status = session.status
                if session.status == AgentSession.Status.AWAITING_APPROVAL:
                    self.stdout.write("  ... waiting for a reviewer's approval")
            if not session.is_live:
                # Verification (tokens refused, context wiped) commits just after the session
                # ends: wait for it, with a deadline, before saying whether it held.
                settle = time.monotonic() + 10
                while not session.termination_verified and time.monotonic() < settle:
                    time.sleep(0.1)
                    session.refresh_from_db()
                verified = "verified" if session.termination_verified else "NOT verified"
                self.stdout.write(f"session {session.status} ({session.termination_reason}; termination {verified})")
                if session.final_answer:
                    self.stdout.write(f"final answer: {session.final_answer}")
                sys.exit(REJECTED_EXIT if rejected else FINAL_EXIT.get(session.status, 4))
            time.sleep(0.2)  # polling the database for a person watching; not test synchronization
        self.stderr.write(f"still {session.status} after {timeout:.0f}s; the session goes on (id {session.pk})")
        sys.exit(5)

    def _fail(self, message: str) -> None:
        self.stderr.write(message)
        sys.exit(2)
