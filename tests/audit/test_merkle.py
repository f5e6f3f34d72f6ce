"""RFC 9162 Merkle tree: published Certificate Transparency vectors, properties, speed.

Test vectors come from transparency-dev/merkle (Go, Apache-2.0), the Merkle library used
by Trillian and the CT ecosystem, which uses RFC 6962 hashing (the same as RFC 9162):

- `proof/verify_test.go` (commit 02194e9afb6c1d95b5381350007963aa70fff472): the
  8-leaf reference tree (`leaves`), its roots for sizes 1..8 (`roots`), the
  `inclusionProofs` and `consistencyProofs` tables, and the corruption probes of
  `corruptInclusionProof` / `corruptConsistencyProof`, re-expressed below;
- `rfc6962/rfc6962_test.go` (commit 78493b07ef9b552e3379abf9e23d4da26fbe797c): the
  empty-tree, empty-leaf, leaf and node hash values;
- `testdata/consistency/1/happy-path.json` (commit bcba819e…): the same 1→8 proof in
  base64, cross-checked against the hex table.

The same 8-leaf tree and hashes appear in google/certificate-transparency's
merkle_tree_test.cc, from which the Go tables were ported.
"""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.audit.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

LEAVES = [h(x) for x in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]
ROOTS = [h(x) for x in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
# (leaf number, 1-based as in the Go table; tree size; proof)
INCLUSION = [
    (1, 1, []),
    (1, 8, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (6, 8, [h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (3, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (2, 5, [h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
]
CONSISTENCY = [
    (1, 1, []),
    (1, 8, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (6, 8, [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 5, [h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (6, 7, [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
]
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def test_rfc6962_hash_vectors() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456").hex() == (
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    assert node_hash(b"N123", b"N456").hex() == (
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")
    # Domain separation: a node is never a leaf over the concatenation, and order matters.
    a, b = leaf_hash(b"Hello"), leaf_hash(b"World")
    assert node_hash(a, b) != leaf_hash(a + b)
    assert node_hash(a, b) != node_hash(b, a)


def test_reference_roots() -> None:
    hashes = [leaf_hash(x) for x in LEAVES]
    tree = MerkleTree.from_entries(LEAVES)
    assert root_from_leaves([]) == EMPTY_ROOT == MerkleTree().root()
    for size in range(1, 9):
        assert root_from_leaves(hashes[:size]) == ROOTS[size - 1]
        assert tree.root(size) == ROOTS[size - 1]


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_ct_inclusion_vectors(leaf: int, size: int, proof: list[bytes]) -> None:
    index, root, lh = leaf - 1, ROOTS[size - 1], leaf_hash(LEAVES[leaf - 1])
    assert verify_inclusion(lh, index, size, proof, root)
    tree = MerkleTree.from_entries(LEAVES)
    assert tree.inclusion_proof(index, size) == proof
    assert inclusion_proof([leaf_hash(x) for x in LEAVES], index, size) == proof
    # transparency-dev/merkle corruptInclusionProof: every probe must be rejected.
    probes: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (index - 1, size, root, lh, proof), (index + 1, size, root, lh, proof),
        (index ^ 2, size, root, lh, proof), (index, size * 2, root, lh, proof),
        (index, size // 2, root, lh, proof), (index, size, root, b"WrongLeaf", proof),
        (index, size, EMPTY_ROOT, lh, proof), (index, size, SOME_HASH, lh, proof),
        (index, size, root, lh, [*proof, b""]), (index, size, root, lh, [*proof, root]),
        (index, size, root, lh, [b"", *proof]), (index, size, root, lh, [root, *proof]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        probes.append((index, size, root, lh, bad))
    if proof:
        probes.append((index, size, root, lh, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, root, lh, [proof[0], SOME_HASH, *proof[1:]]))
    for i_, s_, r_, l_, p_ in probes:
        assert not verify_inclusion(l_, i_, s_, p_, r_), (i_, s_)


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_ct_consistency_vectors(size1: int, size2: int, proof: list[bytes]) -> None:
    r1, r2 = ROOTS[size1 - 1], ROOTS[size2 - 1]
    assert verify_consistency(size1, size2, r1, r2, proof)
    tree = MerkleTree.from_entries(LEAVES)
    assert tree.consistency_proof(size1, size2) == proof
    assert consistency_proof([leaf_hash(x) for x in LEAVES], size1, size2) == proof
    if not proof:
        return
    # transparency-dev/merkle corruptConsistencyProof.
    probes: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (size1 - 1, size2, r1, r2, proof), (size1 + 1, size2, r1, r2, proof),
        (size1 ^ 2, size2, r1, r2, proof), (size1, size2 * 2, r1, r2, proof),
        (size1, size2 // 2, r1, r2, proof), (size1, size2, b"WrongRoot", r2, proof),
        (size1, size2, r1, b"WrongRoot", proof), (size1, size2, r2, r1, proof),
        (size1, size2, r1, r2, []), (size1, size2, r1, r2, [*proof, b""]),
        (size1, size2, r1, r2, [*proof, r1]), (size1, size2, r1, r2, [*proof, r2]),
        (size1, size2, r1, r2, [b"", *proof]), (size1, size2, r1, r2, [r1, *proof]),
        (size1, size2, r1, r2, [r2, *proof]), (size1, size2, r1, r2, [proof[0], *proof]),
        (size1, size2, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((size1, size2, r1, r2, bad))
    for s1, s2, a, b, p in probes:
        assert not verify_consistency(s1, s2, a, b, p), (s1, s2)


def test_ct_testdata_json_vector() -> None:
    # testdata/consistency/1/happy-path.json, base64 as published.
    root1 = base64.b64decode("bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=")
    root2 = base64.b64decode("XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")
    proof = [base64.b64decode(x) for x in (
        "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
        "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
        "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
    )]
    assert (root1, root2) == (ROOTS[0], ROOTS[7])
    assert verify_consistency(1, 8, root1, root2, proof)


def test_edge_cases_from_reference_suite() -> None:
    r1, r2 = b"don't care 1".ljust(32), b"don't care 2".ljust(32)
    assert verify_consistency(0, 0, r1, r1, [])
    assert verify_consistency(0, 1, r1, r2, [])
    assert not verify_consistency(1, 1, r1, r2, [])
    assert not verify_consistency(1, 0, r1, r2, [])  # time travel
    assert not verify_consistency(2, 1, r1, r2, [])
    assert not verify_consistency(1, 2, r1, r2, [])  # empty proof
    assert not verify_consistency(1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    for index, size in ((0, 0), (1, 0), (2, 1)):
        assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)
    data = leaf_hash(b"data")
    assert verify_inclusion(data, 0, 1, [], data)
    assert not verify_inclusion(data, 0, 1, [], b"")


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.data())
def test_tree_matches_reference_and_proofs_verify(n: int, data: st.DataObject) -> None:
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    tree = MerkleTree()
    for x in hashes:
        tree.append_leaf_hash(x)
    size = data.draw(st.integers(1, n), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    old = data.draw(st.integers(0, size), label="old")
    root, old_root = root_from_leaves(hashes[:size]), root_from_leaves(hashes[:old])
    assert tree.root(size) == root and tree.root(old) == old_root

    proof = tree.inclusion_proof(index, size)
    assert proof == inclusion_proof(hashes, index, size)
    assert verify_inclusion(hashes[index], index, size, proof, root)
    cproof = tree.consistency_proof(old, size)
    assert cproof == consistency_proof(hashes, old, size)
    assert verify_consistency(old, size, old_root, root, cproof)

    # Any altered hash, index or size must fail.
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1), label="k")
        bit = data.draw(st.integers(0, 255), label="bit")
        flipped = bytearray(proof[k])
        flipped[bit // 8] ^= 1 << bit % 8
        bad = list(proof)
        bad[k] = bytes(flipped)
        assert not verify_inclusion(hashes[index], index, size, bad, root)
    if size > 1:
        other = (index + data.draw(st.integers(1, size - 1), label="shift")) % size
        assert not verify_inclusion(hashes[index], other, size, proof, root)
    assert not verify_inclusion(leaf_hash(b"forged"), index, size, proof, root)
    # A size is only meaningful with its root (a signed head binds the two): a proof
    # must not verify for another (size, root) pair unless it is that pair's proof.
    for s2 in {size + 1, size * 2, size // 2, size - 1} - {size}:
        if index < s2 <= n:
            expected = proof == tree.inclusion_proof(index, s2)
            assert verify_inclusion(hashes[index], index, s2, proof, tree.root(s2)) == expected
    if 0 < old < size:
        assert not verify_consistency(old, size, old_root, leaf_hash(b"x"), cproof)
        assert not verify_consistency(old, size, leaf_hash(b"x"), root, cproof)
        for o2 in (old - 1, old + 1):
            if 0 < o2 <= size:
                expected = cproof == tree.consistency_proof(o2, size)
                got = verify_consistency(o2, size, tree.root(o2), root, cproof)
                assert got == expected
        for s2 in (size - 1, size + 1, size * 2):
            if old < s2 <= n and s2 != size:
                expected = cproof == tree.consistency_proof(old, s2)
                assert verify_consistency(old, s2, old_root, tree.root(s2), cproof) == expected
        k = data.draw(st.integers(0, len(cproof) - 1), label="ck")
        bad = list(cproof)
        bad[k] = bytes([bad[k][0] ^ 1]) + bad[k][1:]
        assert not verify_consistency(old, size, old_root, root, bad)


def test_range_checks() -> None:
    tree = MerkleTree.from_entries([b"a", b"b", b"c"])
    with pytest.raises(ValueError):
        tree.inclusion_proof(3, 3)
    with pytest.raises(ValueError):
        tree.consistency_proof(2, 4)
    with pytest.raises(ValueError):
        tree.root(4)
    with pytest.raises(ValueError):
        tree.append_leaf_hash(b"short")


def test_proofs_at_a_million_entries() -> None:
    """Proofs stay correct at the size the targets are stated for (1,000,000 entries).
    How fast appends and proofs are is measured by `orcon bench`, not asserted here."""
    n = 1_000_000
    tree = MerkleTree()
    for i in range(n):
        tree.append(i.to_bytes(8, "big") * 16)  # record-sized (128 B)
    rng = random.Random(5)
    idx = [rng.randrange(n) for _ in range(500)]
    root = tree.root()
    proofs = [tree.inclusion_proof(i) for i in idx]
    assert all(len(p) <= 20 for p in proofs)  # ⌈log2(10^6)⌉ = 20 hashes at most
    assert all(
        verify_inclusion(tree.leaf_hash(i), i, n, p, root) for i, p in zip(idx, proofs,
                                                                            strict=True)
    )
    assert not verify_inclusion(tree.leaf_hash(idx[0]), idx[0] + 1, n, proofs[0], root)
