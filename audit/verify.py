"""Verifying the log in the database against its signed checkpoints, inside and outside it.

One pass in seq order recomputes every event's leaf hash from its contents and rebuilds the
tree. It names the first seq that fails: `missing` (a gap, or a tail a checkpoint covers
that is gone), `altered` (contents that do not match the stored hash, or the leaf recorded
outside the database), `reordered` (an event recorded outside the database at another seq),
`checkpoint` (a checkpoint that is forged, deleted, or not extended by the database).
Verification only reads; it needs the public key and no secret (the HMAC key is used only
for the legacy chain, when set).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import DatabaseError, connection

from audit import checkpoints, merkle, notes, tree
from audit.chain import LEAF_FIELDS, _iso, compute_hash, entry_bytes
from audit.models import GENESIS_HASH, AuditEvent, Checkpoint, TreeNode


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    last_seq: int
    first_bad_seq: int | None = None
    problem: str = ""  # altered | missing | reordered | checkpoint
    message: str = ""
    pending: int = 0
    checkpoint_size: int = 0
    external_size: int = 0


class Broken(Exception):
    def __init__(self, seq: int | None, problem: str, message: str) -> None:
        super().__init__(message)
        self.seq, self.problem, self.message = seq, problem, message


_COLUMNS = ("seq", *LEAF_FIELDS, "hash", "legacy_prev_hash", "legacy_hmac")


def _select() -> str:
    at_sql = (
        "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
        if connection.vendor == "postgresql"
        else "at"
    )
    columns = ", ".join(at_sql if c == "at" else c for c in _COLUMNS)
    return f"SELECT {columns} FROM {connection.ops.quote_name(AuditEvent._meta.db_table)}"


def _read_chunk(after_seq: int, limit: int) -> list[tuple[Any, ...]]:
    """Raw SQL in bounded seq ranges: verification reads every event, and the ORM's per-row
    work would halve its speed; a bounded range keeps the planner on the unique index."""
    base = _select()
    with connection.cursor() as cursor:
        cursor.execute(f"{base} WHERE seq > %s AND seq <= %s ORDER BY seq", [after_seq, after_seq + limit])
        rows = cursor.fetchall()
        if not rows:  # past the end, or a gap wider than one chunk
            cursor.execute(f"{base} WHERE seq > %s ORDER BY seq LIMIT %s", [after_seq, limit])
            rows = cursor.fetchall()
        return rows


def _stored_at(value: Any) -> str:
    if isinstance(value, datetime):
        return _iso(value)
    text = str(value)
    if connection.vendor == "sqlite":  # Django keeps naive UTC text: 'YYYY-MM-DD HH:MM:SS[.ffffff]'
        text = text.replace(" ", "T", 1)
        if len(text) == 19:
            text += ".000000"
        text += "+00:00"
    return text


def row_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    """The leaf's fields from a row of `_COLUMNS` (seq first)."""
    fields = dict(zip(LEAF_FIELDS, row[1 : 1 + len(LEAF_FIELDS)]))
    at = fields["at"]
    if not (isinstance(at, str) and at.endswith("+00:00")):  # PostgreSQL's to_char gives the final text
        fields["at"] = _stored_at(at)
    if isinstance(fields["details"], str):
        fields["details"] = json.loads(fields["details"])  # ValueError: reported as altered
    return fields


def recompute_leaf(row: tuple[Any, ...]) -> bytes:
    seq, legacy_prev, legacy_hmac = row[0], row[-2], row[-1]
    legacy = (seq, legacy_prev, legacy_hmac) if legacy_hmac else None
    return merkle.leaf_hash(entry_bytes(row_fields(row), legacy))


class _Pass:
    """State of one verification pass."""

    def __init__(self, signed: dict[int, bytes], external: checkpoints.External | None, where: Path | None) -> None:
        self.frontier = merkle.Frontier()
        self.signed = signed  # tree size -> root that must hold at that size
        self.external = external
        self.where = where
        self.ext_start = 0
        self.ext_leaves: list[bytes] = []  # a window of the external leaves
        self.legacy_prev = GENESIS_HASH
        self.count = 0
        self.made: list[tuple[int, int, bytes]] = []

    def external_leaf(self, seq: int) -> bytes | None:
        if self.where is None:
            return None
        offset = seq - 1 - self.ext_start
        if not 0 <= offset < len(self.ext_leaves):
            self.ext_start = seq - 1
            self.ext_leaves = checkpoints.read_leaves(seq, 5000, self.where)
            offset = 0
        return self.ext_leaves[offset] if offset < len(self.ext_leaves) else None

    def moved_from(self, leaf: bytes, seq: int) -> int | None:
        """The seq the directory recorded this leaf at, if near and not `seq`."""
        lo = max(1, seq - 5000)
        for i, value in enumerate(checkpoints.read_leaves(lo, 10000, self.where)):
            if value == leaf and lo + i != seq:
                return lo + i
        return None

    def check(self, row: tuple[Any, ...]) -> None:
        seq, stored = row[0], row[-3]
        expected = self.frontier.size + 1
        if seq != expected:
            raise Broken(
                expected,
                "missing",
                f"missing: events {expected}..{seq - 1} are absent (the next event present is seq {seq})",
            )
        try:
            leaf = recompute_leaf(row)
        except (ValueError, TypeError, AttributeError) as exc:
            raise Broken(seq, "altered", f"altered: seq {seq} is malformed ({exc})") from None
        if leaf.hex() != stored:
            raise Broken(seq, "altered", f"altered: the contents of seq {seq} do not match its hash")
        recorded = self.external_leaf(seq)
        if recorded is not None and recorded != leaf:
            origin = self.moved_from(leaf, seq)
            if origin is not None:
                raise Broken(
                    seq,
                    "reordered",
                    f"reordered: the event at seq {seq} was sequenced at seq {origin} (checkpoint directory)",
                )
            raise Broken(
                seq,
                "altered",
                f"altered: seq {seq} is not the event the checkpoint directory recorded (rewritten with its hash)",
            )
        if row[-1]:
            self.check_legacy(seq, row)
        self.made.extend(self.frontier.append(leaf))
        self.count += 1
        want = self.signed.get(self.frontier.size)
        if want is not None and self.frontier.root() != want:
            raise Broken(
                self.previous_signed(self.frontier.size) + 1,
                "altered",
                f"altered: events after seq {self.previous_signed(self.frontier.size)} no longer hash to the "
                f"checkpoint of size {self.frontier.size}",
            )

    def check_nodes(self) -> None:
        """The stored perfect subtrees completed so far must be the ones recomputed: proofs
        and the sequencer's next root are built from them."""
        if not self.made:
            return
        by_level: dict[int, list[int]] = {}
        for level, index, _ in self.made:
            by_level.setdefault(level, []).append(index)
        where = " OR ".join(['(level = %s AND "index" BETWEEN %s AND %s)'] * len(by_level))
        params: list[int] = []
        for level, indexes in by_level.items():
            params += [level, min(indexes), max(indexes)]
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT level, "index", hash FROM {TreeNode._meta.db_table} WHERE {where}', params)
            stored = {(level, index): value for level, index, value in cursor.fetchall()}
        for level, index, value in self.made:
            if stored.get((level, index)) != value.hex():
                first = (index << level) + 1
                raise Broken(
                    first,
                    "altered",
                    f"altered: the stored tree node over seq {first}..{(index + 1) << level} is "
                    f"{'missing' if (level, index) not in stored else 'not the hash of its events'}",
                )
        self.made = []

    def previous_signed(self, size: int) -> int:
        return max((s for s in self.signed if s < size), default=0)

    def check_legacy(self, seq: int, row: tuple[Any, ...]) -> None:
        prev, hmac_value = row[-2], row[-1]
        fields = {"seq": seq, **row_fields(row)}
        if compute_hash(prev, fields) != hmac_value:
            raise Broken(seq, "altered", f"altered: the legacy HMAC of seq {seq} does not match its contents")
        if prev != self.legacy_prev:
            raise Broken(seq, "altered", f"altered: legacy prev_hash of seq {seq} does not match seq {seq - 1}")
        self.legacy_prev = hmac_value


def _signed_in_database(verifier: notes.Verifier) -> dict[int, bytes]:
    signed: dict[int, bytes] = {}
    for size, root_hex, note in Checkpoint.objects.order_by("tree_size").values_list("tree_size", "root_hash", "note"):
        try:
            body = notes.open_checkpoint(note, verifier, notes.origin())
        except notes.NoteError as exc:
            raise Broken(size, "checkpoint", f"checkpoint: the checkpoint of size {size} is forged ({exc})") from None
        if body.size != size or body.root.hex() != root_hex:
            raise Broken(size, "checkpoint", f"checkpoint: the row of the checkpoint of size {size} was edited")
        signed[size] = body.root
    return signed


def verify(
    *,
    chunk_size: int = 1000,
    progress: Callable[[int, int], None] | None = None,
    external: bool = True,
    directory: Path | None = None,
) -> VerifyResult:
    """Verify every event and checkpoint; `progress(done, total)` after each chunk."""
    verifier = notes.verifier()
    where = (directory or checkpoints.directory()) if external else None
    state: _Pass | None = None
    ext: checkpoints.External | None = None
    try:
        signed = _signed_in_database(verifier)
        if where is not None:
            try:
                ext = checkpoints.newest_external(verifier, where)
            except (notes.NoteError, OSError, ValueError) as exc:
                raise Broken(
                    None, "checkpoint", f"checkpoint: the newest external checkpoint is invalid ({exc})"
                ) from None
        if ext is not None:
            signed.setdefault(ext.size, ext.root)
            if signed[ext.size] != ext.root:
                raise Broken(
                    ext.size,
                    "checkpoint",
                    f"checkpoint: the database's checkpoint of size {ext.size} "
                    "differs from the one in the checkpoint directory",
                )
        state = _Pass(signed, ext, where)
        total = AuditEvent.objects.filter(seq__isnull=False).count()
        while True:
            try:
                rows = _read_chunk(state.frontier.size, chunk_size)
            except (ValueError, TypeError, DatabaseError) as exc:
                n = state.frontier.size
                raise Broken(n + 1, "altered", f"altered: events after seq {n} cannot be read ({exc})") from None
            if not rows:
                break
            for row in rows:
                state.check(row)
            state.check_nodes()
            if progress:
                progress(state.count, total)
        size = state.frontier.size
        _check_tail(size, signed, ext, where)
        for seq, problem in checkpoints.verify_legacy_checkpoints(verifier):
            raise Broken(seq, "checkpoint", f"checkpoint: {problem}")
        pending = _check_pending()
    except Broken as broken:
        count = state.count if state else 0
        last = state.frontier.size if state else 0
        return VerifyResult(False, count, last, broken.seq, broken.problem, broken.message)
    newest_db = max(_db_sizes(), default=0)
    return VerifyResult(
        True, state.count, size, pending=pending, checkpoint_size=newest_db, external_size=ext.size if ext else 0
    )


def _db_sizes() -> set[int]:
    return set(Checkpoint.objects.values_list("tree_size", flat=True))


def _check_tail(size: int, signed: dict[int, bytes], ext: checkpoints.External | None, where: Path | None) -> None:
    beyond = [s for s in signed if s > size]
    if beyond:
        cut = max(beyond)
        where_from = "checkpoint directory" if ext is not None and cut == ext.size else "database"
        raise Broken(
            size + 1,
            "missing",
            f"missing: a checkpoint of size {cut} ({where_from}) covers seq {cut}, but the log ends at seq {size}: "
            "its tail was cut off",
        )
    if where is not None:
        recorded = checkpoints.external_leaf_count(where)
        if recorded > size:
            raise Broken(
                size + 1,
                "missing",
                f"missing: the checkpoint directory recorded {recorded} events, but the log ends at seq {size}",
            )
    if ext is None:
        return
    db_sizes = _db_sizes()
    if ext.size not in db_sizes:
        raise Broken(
            ext.size,
            "checkpoint",
            f"checkpoint: the checkpoint of size {ext.size} in the checkpoint directory was deleted from the database",
        )
    newest = max(db_sizes)
    if newest > ext.size:
        new_root = signed[newest]
        try:
            proof = tree.consistency_proof(ext.size, newest)
        except tree.TreeDataMissing as exc:
            raise Broken(ext.size + 1, "checkpoint", f"checkpoint: cannot prove consistency ({exc})") from None
        if not merkle.verify_consistency(ext.size, newest, ext.root, new_root, proof):
            raise Broken(
                ext.size + 1,
                "checkpoint",
                f"checkpoint: the database's tree of size {newest} does not extend the external checkpoint "
                f"of size {ext.size}",
            )


def _check_pending() -> int:
    """Events not yet sequenced must still match their hashes; returns how many there are."""
    base = _select().replace("SELECT seq,", "SELECT id,", 1)
    count = 0
    with connection.cursor() as cursor:
        cursor.execute(f"{base} WHERE seq IS NULL ORDER BY id")
        for row in cursor.fetchall():
            count += 1
            try:
                intact = merkle.leaf_hash(entry_bytes(row_fields(row))).hex() == row[-3]
            except (ValueError, TypeError, AttributeError):
                intact = False
            if not intact:
                raise Broken(None, "altered", f"altered: the event with id {row[0]}, not yet sequenced, was changed")
    return count
