"""RFC 6962 / RFC 9162 Merkle tree hashing and proofs, with no I/O.

Leaves are indexed from 0; Warden's `seq` is the leaf index plus one. Proofs are built from
the hashes of ranges of leaves, so the same code serves a list in memory (tests, offline
verification) and the node table in the database (audit.tree): a caller passes a function
that returns MTH(D[a:b]) for the ranges the proof names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

Hash = bytes
RangeHash = Callable[[int, int], Hash]


def leaf_hash(entry: bytes) -> Hash:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: Hash, right: Hash) -> Hash:
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[Hash]) -> Hash:
    """MTH of already-hashed leaves, by the RFC's recursive definition."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def full_pieces(a: int, b: int) -> list[tuple[int, int]]:
    """[a, b) as the perfect subtrees (level, index) it is made of, left to right.

    Every range a proof names starts at a multiple of a power of two at least as large as
    the range, so the pieces shrink from left to right and MTH(D[a:b]) is their right fold.
    """
    pieces = []
    while a < b:
        level = (b - a).bit_length() - 1
        while a % (1 << level):
            level -= 1
        pieces.append((level, a >> level))
        a += 1 << level
    return pieces


def fold(hashes: Sequence[Hash]) -> Hash:
    """Right fold of the perfect-subtree hashes of a range: MTH of the range."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose hashes make the audit path of leaf `index` in a tree of `size` (RFC 6962 2.1.1),
    bottom-up."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    return list(reversed(ranges))


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The ranges whose hashes prove that the tree of size `old` is a prefix of the tree of
    size `new` (RFC 6962 2.1.2, SUBPROOF), in proof order."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from size {old} to size {new}")
    if old == new:
        return []
    ranges: list[tuple[int, int]] = []

    def subproof(m: int, lo: int, hi: int, complete: bool) -> None:
        n = hi - lo
        if m == n:
            if not complete:
                ranges.append((lo, hi))
            return
        k = _split(n)
        if m <= k:
            subproof(m, lo, lo + k, complete)
            ranges.append((lo + k, hi))
        else:
            subproof(m - k, lo + k, hi, False)
            ranges.append((lo, lo + k))

    subproof(old, 0, new, True)
    return ranges


def memory_ranges(leaves: Sequence[Hash]) -> RangeHash:
    return lambda a, b: root_of(leaves[a:b])


def inclusion_proof(index: int, size: int, range_hash: RangeHash) -> list[Hash]:
    return [range_hash(a, b) for a, b in inclusion_ranges(index, size)]


def consistency_proof(old: int, new: int, range_hash: RangeHash) -> list[Hash]:
    return [range_hash(a, b) for a, b in consistency_ranges(old, new)]


def root_from_inclusion(index: int, size: int, leaf: Hash, proof: Sequence[Hash]) -> Hash:
    """The root that `proof` implies for `leaf` at `index` (RFC 9162 2.1.3.2); raises
    ValueError when the proof has the wrong shape."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    fn, sn, result = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ValueError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            result = node_hash(p, result)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("inclusion proof is too short")
    return result


def verify_inclusion(index: int, size: int, leaf: Hash, proof: Sequence[Hash], root: Hash) -> bool:
    try:
        return root_from_inclusion(index, size, leaf, proof) == root
    except ValueError:
        return False


def verify_consistency(old: int, new: int, old_root: Hash, new_root: Hash, proof: Sequence[Hash]) -> bool:
    """RFC 9162 2.1.4.2."""
    if not 0 < old <= new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is itself the first node
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


class Frontier:
    """The right edge of a growing tree: the roots of its perfect subtrees, largest first.

    `append` returns the perfect-subtree nodes it completes, as (level, index, hash), so the
    sequencer can store every node a proof may need.
    """

    def __init__(self, size: int = 0, nodes: Sequence[Hash] = ()) -> None:
        levels = [bit for bit in range(size.bit_length() - 1, -1, -1) if size >> bit & 1]
        if len(levels) != len(nodes):
            raise ValueError(f"a tree of size {size} has {len(levels)} frontier nodes, not {len(nodes)}")
        self.size = size
        self.stack: list[tuple[int, Hash]] = list(zip(levels, nodes))

    def append(self, leaf: Hash) -> list[tuple[int, int, Hash]]:
        made: list[tuple[int, int, Hash]] = []
        index = self.size
        level, value = 0, leaf
        while self.stack and self.stack[-1][0] == level:
            _, left = self.stack.pop()
            value = node_hash(left, value)
            level += 1
            made.append((level, index >> level, value))
        self.stack.append((level, value))
        self.size += 1
        return made

    def root(self) -> Hash:
        if not self.stack:
            return EMPTY_ROOT
        return fold([value for _, value in self.stack])

    @staticmethod
    def keys(size: int) -> list[tuple[int, int]]:
        """(level, index) of the frontier nodes of a tree of `size`, largest first."""
        return full_pieces(0, size)
