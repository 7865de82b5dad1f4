"""The Merkle tree as stored in the database: leaves in AuditEvent.hash (by seq), perfect
subtrees above them in TreeNode. Proofs read O(log n) rows in two queries."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

from audit import merkle
from audit.models import AuditEvent, TreeNode


class TreeDataMissing(LookupError):
    """A node a proof needs is absent: the tree in the database is damaged."""


def nodes(keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Hashes of perfect subtrees by (level, index); raises TreeDataMissing for absent ones."""
    wanted = set(keys)
    leaves = sorted(index + 1 for level, index in wanted if level == 0)
    found: dict[tuple[int, int], bytes] = {}
    if leaves:
        for seq, value in AuditEvent.objects.filter(seq__in=leaves).values_list("seq", "hash"):
            if seq is not None:  # the filter on seq__in already excludes unsequenced events
                found[(0, seq - 1)] = bytes.fromhex(value)
    upper = [key for key in wanted if key[0] > 0]
    if upper:
        query = Q()
        for level, index in upper:
            query |= Q(level=level, index=index)
        for level, index, value in TreeNode.objects.filter(query).values_list("level", "index", "hash"):
            found[(level, index)] = bytes.fromhex(value)
    missing = wanted - found.keys()
    if missing:
        level, index = min(missing)
        raise TreeDataMissing(f"the tree node at level {level}, index {index} is missing")
    return found


def _resolve(ranges: list[tuple[int, int]]) -> list[bytes]:
    pieces = [merkle.full_pieces(a, b) for a, b in ranges]
    found = nodes(key for group in pieces for key in group)
    return [merkle.fold([found[key] for key in group]) for group in pieces]


def inclusion_proof(seq: int, size: int) -> list[bytes]:
    """The audit path of the event at `seq` in the tree of `size` leaves."""
    return _resolve(merkle.inclusion_ranges(seq - 1, size))


def consistency_proof(old: int, new: int) -> list[bytes]:
    return _resolve(merkle.consistency_ranges(old, new))


def root(size: int) -> bytes:
    if size == 0:
        return merkle.EMPTY_ROOT
    return _resolve([(0, size)])[0]


def frontier(size: int) -> merkle.Frontier:
    keys = merkle.Frontier.keys(size)
    found = nodes(keys)
    return merkle.Frontier(size, [found[key] for key in keys])
