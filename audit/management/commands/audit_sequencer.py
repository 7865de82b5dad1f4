from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from audit import notes
from audit.sequencer import ADVISORY_KEY, Sequencer, SequencerHalted

log = logging.getLogger("warden.audit.sequencer")


class Command(BaseCommand):
    help = (
        "Run the audit sequencer: assign seq to committed events, extend the Merkle tree, sign "
        "checkpoints. Run exactly one; a second one waits for the first's lock."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="sequence what is committed now, sign, and exit")
        parser.add_argument("--public-key", action="store_true", help="print the verifier key (vkey) and exit")
        parser.add_argument("--batch", type=int, default=None, help="events per batch (WARDEN_SEQUENCER_BATCH)")

    def handle(
        self, *args: Any, once: bool = False, public_key: bool = False, batch: int | None, **options: Any
    ) -> None:
        try:
            signer = notes.signer()  # only this process needs the private key: refuse to start without it
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        if public_key:
            self.stdout.write(signer.verifier.vkey)
            return
        sequencer = Sequencer(signer, batch=batch)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_KEY])
                if not cursor.fetchone()[0]:
                    self.stderr.write("another audit sequencer holds the lock; waiting for it")
                    cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_KEY])
        try:
            sequencer.check_external()
            if once:
                count = sequencer.drain()
                self.stdout.write(f"sequenced {count} events")
                return
            self.stderr.write(f"audit sequencer running (log {signer.name}, key {signer.verifier.key_id.hex()})")
            sequencer.run(stop)
        except SequencerHalted as exc:
            log.critical("ALERT %s", exc)
            raise CommandError(str(exc)) from None
