from __future__ import annotations

import base64
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import merkle, tree
from audit.models import AuditEvent, Checkpoint


class Command(BaseCommand):
    help = "Print the inclusion proof of one event against a checkpoint (the newest by default), as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seq", type=int, required=True)
        parser.add_argument("--size", type=int, help="tree size of the checkpoint to prove against")

    def handle(self, *args: Any, seq: int, size: int | None = None, **options: Any) -> None:
        checkpoints = Checkpoint.objects.all()
        checkpoint = (checkpoints.filter(tree_size=size) if size else checkpoints.order_by("-tree_size")).first()
        if checkpoint is None:
            raise CommandError(f"no checkpoint of size {size}" if size else "no checkpoint has been signed yet")
        leaf = AuditEvent.objects.filter(seq=seq).values_list("hash", flat=True).first()
        if leaf is None or not 0 < seq <= checkpoint.tree_size:
            raise CommandError(f"seq {seq} is not in the checkpoint of size {checkpoint.tree_size}")
        try:
            proof = tree.inclusion_proof(seq, checkpoint.tree_size)
        except tree.TreeDataMissing as exc:
            raise CommandError(f"cannot build the proof: {exc}; run audit_verify") from None
        holds = merkle.verify_inclusion(
            seq - 1, checkpoint.tree_size, bytes.fromhex(leaf), proof, bytes.fromhex(checkpoint.root_hash)
        )
        self.stdout.write(
            json.dumps(
                {
                    "seq": seq,
                    "leaf_index": seq - 1,
                    "leaf_hash": base64.b64encode(bytes.fromhex(leaf)).decode(),
                    "tree_size": checkpoint.tree_size,
                    "inclusion_proof": [base64.b64encode(p).decode() for p in proof],
                    "checkpoint": checkpoint.note,
                    "verified": holds,
                },
                indent=2,
            )
        )
        if not holds:
            raise CommandError(f"the proof for seq {seq} does not lead to the checkpoint's root: run audit_verify")
