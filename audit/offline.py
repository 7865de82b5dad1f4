"""Verifying an export with proofs, with no database and no secret: only the export, a signed
checkpoint and the log's public key. What an auditor runs on their own machine."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from audit import merkle, notes
from audit.canonical import chain_json


# OCSF fields that repeat what the leaf commits to: they must agree with it.
@dataclass(frozen=True)
class OfflineResult:
    ok: bool
    count: int
    tree_size: int
    complete: bool = False
    first_bad_seq: int | None = None
    message: str = ""


def verify_export(lines: Iterable[str], checkpoint_note: str, public_key: str) -> OfflineResult:
    try:
        first_line = checkpoint_note.split("\n", 1)[0]
        name, public = notes.load_public_key(public_key, first_line)
        body = notes.open_checkpoint(checkpoint_note, notes.Verifier(name, public))
    except notes.NoteError as exc:
        return OfflineResult(False, 0, 0, message=f"the checkpoint does not verify with this key: {exc}")
    seen: set[int] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        seq = None
        try:
            event = json.loads(line)
            seq = event["metadata"]["sequence"]
            proof = event["unmapped"]["proof"]
            problem = _check(event, proof, seq, body)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            problem = f"line {number} is not an event with a proof ({type(exc).__name__}: {exc})"
        if problem is None and seq in seen:
            problem = f"seq {seq} appears twice"
        if problem is not None:
            return OfflineResult(False, len(seen), body.size, first_bad_seq=seq, message=problem)
        if not isinstance(seq, int):
            return OfflineResult(False, len(seen), body.size, message=f"line {number} has no sequence number")
        seen.add(seq)
    complete = len(seen) == body.size
    return OfflineResult(True, len(seen), body.size, complete=complete)


class OfflineUsage(ValueError):
    """The files cannot be read, or an argument is missing: a usage error, not a broken log."""


def verify_files(export: str, checkpoint: str | None, public_key: str | None) -> tuple[bool, str]:
    """`audit_verify --offline`: (ok, the line to print). Needs neither a database nor Django's
    settings, so an auditor runs it with no secret (manage.py calls it before loading settings)."""
    if not checkpoint or not public_key:
        raise OfflineUsage("--offline needs --checkpoint FILE and --public-key KEY")
    key_path = Path(public_key)
    try:
        key = key_path.read_text().strip() if key_path.is_file() else public_key
        note = Path(checkpoint).read_text(encoding="utf-8")
        with open(export, encoding="utf-8") as lines:
            result = verify_export(lines, note, key)
    except OSError as exc:
        raise OfflineUsage(f"cannot read: {exc}") from None
    if not result.ok:
        where = f"seq {result.first_bad_seq}" if result.first_bad_seq is not None else "the checkpoint"
        return False, f"export BROKEN at {where}: {result.message}"
    scope = "every event of the tree" if result.complete else "a subset of the tree"
    return True, f"export OK: {result.count} events proved against the checkpoint of size {result.tree_size} ({scope})"


def _check(event: dict, proof: dict, seq: object, body: notes.CheckpointBody) -> str | None:
    if not isinstance(seq, int) or proof["leaf_index"] != seq - 1:
        return f"seq {seq}: the proof is for another leaf"
    if proof["tree_size"] != body.size:
        return (
            f"seq {seq}: proved against a tree of size {proof['tree_size']}, but the checkpoint is of size "
            f"{body.size}; export with --size {body.size}, or use the checkpoint the export names"
        )
    entry = proof["entry"]
    leaf = merkle.leaf_hash(chain_json(entry))
    path = [base64.b64decode(p, validate=True) for p in proof["inclusion_proof"]]
    if not merkle.verify_inclusion(seq - 1, body.size, leaf, path, body.root):
        return f"seq {seq}: altered: its contents and proof do not lead to the checkpoint's root"
    # Every field a reader sees (who, when, what, the outcome, the OCSF projection) must be
    # exactly what the signed entry gives: the event is rebuilt from the entry and compared whole.
    from audit.ocsf import to_ocsf

    fields = {key: value for key, value in entry.items() if key != "legacy"}
    expected = to_ocsf({**fields, "seq": seq, "hash": leaf.hex()})
    shown = {**event, "unmapped": {k: v for k, v in event["unmapped"].items() if k != "proof"}}
    # Compared as JSON text, not as Python objects: there `True == 1` and `1 == 1.0`, so an
    # export that shows `true` for a signed `1` would pass.
    if _as_json(shown) != _as_json(expected):
        return f"seq {seq}: the event's fields differ from the entry its proof covers"
    return None


def _as_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
