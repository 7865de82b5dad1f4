from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from audit import checkpoints, merkle, notes, tree
from audit.models import Checkpoint
from audit.offline import OfflineUsage, verify_files
from audit.verify import verify


class Command(BaseCommand):
    help = (
        "Verify the audit log: every event against the Merkle tree and the signed checkpoints, in the "
        "database and in WARDEN_CHECKPOINT_DIR. Exit 0 when it holds; exit 1 and name the first bad seq."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="print only the result line")
        parser.add_argument("--checkpoints", action="store_true", help="(always on; kept for old scripts)")
        parser.add_argument("--no-external", action="store_true", help="ignore WARDEN_CHECKPOINT_DIR")
        parser.add_argument(
            "--consistency", nargs=2, type=int, metavar=("OLD", "NEW"), help="prove size NEW extends OLD"
        )
        parser.add_argument("--offline", metavar="EXPORT", help="verify an `audit_export --proofs` file, no database")
        parser.add_argument("--checkpoint", metavar="FILE", help="with --offline: the signed checkpoint")
        parser.add_argument("--public-key", metavar="KEY", help="with --offline: the vkey, base64 key, or a file of it")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["offline"]:
            self._offline(options["offline"], options["checkpoint"], options["public_key"])
        elif options["consistency"]:
            self._consistency(*options["consistency"])
        else:
            self._database(options["quiet"], not options["no_external"])

    def _fail(self, text: str) -> None:
        self.stderr.write(text)
        sys.exit(1)

    def _database(self, quiet: bool, external: bool) -> None:
        show_progress = not quiet and sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            if show_progress and total:
                self.stderr.write(f"\rverifying {done}/{total} ({done * 100 // total}%)", ending="")

        try:
            result = verify(progress=progress, external=external)
        except DatabaseError as exc:
            text = str(exc)
            if "no such table" in text or ("relation" in text and "does not exist" in text):
                raise  # a database that was never migrated: manage.py says so in one line
            self._fail(f"audit log NOT VERIFIED: {type(exc).__name__}: {exc}")
        except (OSError, ValueError) as exc:  # not tampering, but not verified either
            self._fail(f"audit log NOT VERIFIED: {type(exc).__name__}: {exc}")
        if show_progress:
            self.stderr.write("")
        if not result.ok:
            if result.first_bad_seq is not None:
                where = f"seq {result.first_bad_seq}"
            else:
                where = "the checkpoint directory" if result.problem == "checkpoint" else "an unsequenced event"
            self._fail(f"audit log BROKEN at {where}: {result.message} ({result.count} events verified before it)")
        extra = f"; newest checkpoint {result.checkpoint_size}"
        if result.external_size:
            extra += f", external checkpoint {result.external_size} consistent"
        if result.pending:
            extra += f"; {result.pending} events awaiting the sequencer"
        self.stdout.write(f"audit log OK: {result.count} events verified (last seq {result.last_seq}){extra}")

    def _note(self, size: int) -> str:
        if size in checkpoints.external_sizes():
            return checkpoints.read_note(size)
        note = Checkpoint.objects.filter(tree_size=size).values_list("note", flat=True).first()
        if note is None:
            raise CommandError(f"no checkpoint of size {size}, in the checkpoint directory or the database")
        return note

    def _consistency(self, old: int, new: int) -> None:
        if not 0 < old <= new:
            raise CommandError("OLD and NEW must be tree sizes with 0 < OLD <= NEW")
        verifier = notes.verifier()
        try:
            old_body = notes.open_checkpoint(self._note(old), verifier, notes.origin())
            new_body = notes.open_checkpoint(self._note(new), verifier, notes.origin())
        except notes.NoteError as exc:
            self._fail(f"audit log BROKEN: a checkpoint does not verify: {exc}")
        try:
            proof = tree.consistency_proof(old, new)
        except tree.TreeDataMissing as exc:
            self._fail(f"audit log BROKEN at seq {old + 1}: cannot build the consistency proof: {exc}")
        if not merkle.verify_consistency(old, new, old_body.root, new_body.root, proof):
            self._fail(
                f"audit log BROKEN at seq {old + 1}: the tree of size {new} does not extend the tree of size {old}"
            )
        self.stdout.write(
            f"consistent: the checkpoint of size {new} extends the checkpoint of size {old} ({len(proof)} hashes)"
        )

    def _offline(self, export: str, checkpoint: str | None, public_key: str | None) -> None:
        try:
            ok, line = verify_files(export, checkpoint, public_key)
        except OfflineUsage as exc:
            raise CommandError(str(exc)) from None
        if not ok:
            self._fail(line)
        self.stdout.write(line)
