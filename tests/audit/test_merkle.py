"""audit.merkle against the RFC 6962 test vectors (the certificate-transparency reference
suite) and against a naive recomputation, for every pair of tree sizes up to 64."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle

CT_LEAVES = [
    bytes.fromhex(h)
    for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CT_CONSISTENCY = {
    (1, 1): [],
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}
CT_HASHES = [merkle.leaf_hash(leaf) for leaf in CT_LEAVES]


def naive_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 6962 2.1, raw hashlib, sharing nothing with audit.merkle."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + naive_root(leaves[:k]) + naive_root(leaves[k:])).digest()


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_roots_match_the_rfc_6962_vectors(size: int) -> None:
    assert merkle.root_of(CT_HASHES[:size]).hex() == CT_ROOTS[size]
    frontier = merkle.Frontier()
    for leaf in CT_HASHES[:size]:
        frontier.append(leaf)
    assert frontier.root().hex() == CT_ROOTS[size]


@pytest.mark.parametrize("index, size", CT_INCLUSION)
def test_inclusion_proofs_match_the_vectors(index: int, size: int) -> None:
    proof = merkle.inclusion_proof(index, size, merkle.memory_ranges(CT_HASHES[:size]))
    assert [p.hex() for p in proof] == CT_INCLUSION[(index, size)]
    assert merkle.verify_inclusion(index, size, CT_HASHES[index], proof, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize("old, new", CT_CONSISTENCY)
def test_consistency_proofs_match_the_vectors(old: int, new: int) -> None:
    proof = merkle.consistency_proof(old, new, merkle.memory_ranges(CT_HASHES[:new]))
    assert [p.hex() for p in proof] == CT_CONSISTENCY[(old, new)]
    roots = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    assert merkle.verify_consistency(old, new, *roots, proof)


def test_every_proof_for_every_pair_of_sizes_up_to_64() -> None:
    """Exhaustive: each inclusion proof (leaf, size) and consistency proof (old, new) verifies
    against the naive root, and a proof with one hash flipped or one hash short does not."""
    data = [i.to_bytes(2, "big") for i in range(64)]
    leaves = [merkle.leaf_hash(d) for d in data]
    roots = [naive_root(data[:n]) for n in range(65)]
    for size in range(1, 65):
        ranges = merkle.memory_ranges(leaves[:size])
        for index in range(size):
            proof = merkle.inclusion_proof(index, size, ranges)
            assert merkle.verify_inclusion(index, size, leaves[index], proof, roots[size])
            if proof:
                assert not merkle.verify_inclusion(index, size, leaves[index], proof[:-1], roots[size])
                bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
                assert not merkle.verify_inclusion(index, size, leaves[index], bad, roots[size])
        for old in range(1, size + 1):
            proof = merkle.consistency_proof(old, size, ranges)
            assert merkle.verify_consistency(old, size, roots[old], roots[size], proof)
            if proof:
                assert not merkle.verify_consistency(old, size, roots[old], roots[size], proof[:-1])
                assert old == size or not merkle.verify_consistency(
                    old, size, roots[old - 1] if old > 1 else roots[size], roots[size], proof
                )


@settings(max_examples=200, deadline=None)
@given(data=st.lists(st.binary(max_size=8), min_size=1, max_size=300), picks=st.data())
def test_random_trees_agree_with_the_naive_recomputation(data: list[bytes], picks: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(d) for d in data]
    size = len(leaves)
    root = naive_root(data)
    frontier, stored = merkle.Frontier(), {}
    for i, leaf in enumerate(leaves):
        stored[(0, i)] = leaf
        for level, index, value in frontier.append(leaf):
            stored[(level, index)] = value
    assert frontier.root() == merkle.root_of(leaves) == root
    # Every perfect subtree the frontier reported is the naive root of its leaves.
    for (level, index), value in stored.items():
        assert value == naive_root(data[index << level : (index + 1) << level])

    # Proofs built from the stored perfect subtrees (as the database serves them) verify.
    def from_nodes(a: int, b: int) -> bytes:
        return merkle.fold([stored[key] for key in merkle.full_pieces(a, b)])

    index = picks.draw(st.integers(0, size - 1))
    proof = merkle.inclusion_proof(index, size, from_nodes)
    assert proof == merkle.inclusion_proof(index, size, merkle.memory_ranges(leaves))
    assert merkle.verify_inclusion(index, size, leaves[index], proof, root)
    old = picks.draw(st.integers(1, size))
    consistency = merkle.consistency_proof(old, size, from_nodes)
    assert merkle.verify_consistency(old, size, naive_root(data[:old]), root, consistency)
    # A frontier rebuilt from its stored nodes continues the same tree.
    resumed = merkle.Frontier(old, [stored[key] for key in merkle.Frontier.keys(old)])
    for leaf in leaves[old:]:
        resumed.append(leaf)
    assert resumed.root() == root


def test_malformed_proof_requests_are_refused() -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_ranges(3, 3)
    with pytest.raises(ValueError):
        merkle.consistency_ranges(0, 3)
    with pytest.raises(ValueError):
        merkle.Frontier(3, [b"x" * 32])
    assert not merkle.verify_consistency(2, 1, b"", b"", [])
    assert not merkle.verify_consistency(2, 3, CT_HASHES[0], CT_HASHES[1], [])
