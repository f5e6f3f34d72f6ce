"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing and proofs.

Pure and dependency-free on purpose (compare Go's golang.org/x/mod/sumdb/tlog): an
auditor's verifier must be small enough to read in one sitting, and it must never need
the broker, NATS or the network.

Hashing (RFC 9162 §2.1.1, identical to RFC 6962 §2.1, so real CT proofs verify):
    leaf hash = SHA-256(0x00 ‖ entry)
    node hash = SHA-256(0x01 ‖ left ‖ right)
    MTH({})   = SHA-256()

Two layers:
- module functions over a sequence of leaf hashes (`root_from_leaves`,
  `inclusion_proof`, `consistency_proof`): the RFC's recursive definitions, kept
  literal so they serve as the reference the fast tree is tested against;
- `MerkleTree`: append-only, keeps the hash of every complete (perfect, aligned)
  subtree, so append is amortised O(1) and any root or proof is O(log² n) at worst.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 ‖ entry)."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n ≥ 2): RFC 9162's k."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaves(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over already-hashed leaves (use `leaf_hash` on raw entries first).

    Streams with a stack of perfect subtrees (O(log n) memory), so a verifier can fold
    a million entries without holding the tree.
    """
    # stack[i] = (height, hash); heights strictly decrease from bottom to top.
    stack: list[tuple[int, bytes]] = []
    for h in leaf_hashes:
        height, cur = 0, h
        while stack and stack[-1][0] == height:
            cur = node_hash(stack.pop()[1], cur)
            height += 1
        stack.append((height, cur))
    if not stack:
        return EMPTY_ROOT
    # The right edge of an unbalanced tree folds right-to-left (RFC 9162 §2.1.1).
    acc = stack[-1][1]
    for _, h in reversed(stack[:-1]):
        acc = node_hash(h, acc)
    return acc


def _mth(leaves: Sequence[bytes]) -> bytes:
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) from RFC 9162 §2.1.3.1 (reference implementation, O(n))."""
    if not 0 <= index < size <= len(leaf_hashes):
        raise ValueError(f"no inclusion proof for index {index} in a tree of size {size}")

    def path(m: int, d: Sequence[bytes]) -> list[bytes]:
        n = len(d)
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*path(m, d[:k]), _mth(d[k:])]
        return [*path(m - k, d[k:]), _mth(d[:k])]

    return path(index, leaf_hashes[:size])


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) from RFC 9162 §2.1.4.1 (reference, O(n))."""
    if not 0 <= old_size <= new_size <= len(leaf_hashes):
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size == 0 or old_size == new_size:
        return []

    def subproof(m: int, d: Sequence[bytes], complete: bool) -> list[bytes]:
        n = len(d)
        if m == n:
            return [] if complete else [_mth(d)]
        k = _split(n)
        if m <= k:
            return [*subproof(m, d[:k], complete), _mth(d[k:])]
        return [*subproof(m - k, d[k:], False), _mth(d[:k])]

    return subproof(old_size, leaf_hashes[:new_size], True)


def _is_hash(h: bytes) -> bool:
    return isinstance(h, bytes) and len(h) == HASH_SIZE


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does `proof` show leaf `index` of a `tree_size` tree under `root`?"""
    if not (_is_hash(leaf_hash) and _is_hash(root)) or not 0 <= index < tree_size:
        return False
    if not all(_is_hash(p) for p in proof):
        return False
    fn, sn, r = index, tree_size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the `new_size` tree an append-only extension of `old_size`?"""
    if not (_is_hash(old_root) and _is_hash(new_root)) or not 0 <= old_size <= new_size:
        return False
    if not all(_is_hash(p) for p in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        # Every tree extends the empty tree; a non-empty proof is malformed.
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is a perfect subtree of the new one, so its root is the seed.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class MerkleTree:
    """Append-only Merkle tree that keeps every complete subtree's hash.

    `_levels[h]` is a flat bytearray of the hashes of the perfect subtrees of height h
    that are complete so far, left to right (node i covers leaves [i·2ʰ, (i+1)·2ʰ)).
    Flat bytearrays instead of lists of bytes objects halve the memory at a million
    leaves (~64 MB) and keep append allocation-free apart from the hashing.
    """

    __slots__ = ("_levels", "_size")

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0

    @classmethod
    def from_entries(cls, entries: Iterable[bytes]) -> MerkleTree:
        tree = cls()
        for e in entries:
            tree.append(e)
        return tree

    def __len__(self) -> int:
        return self._size

    @property
    def size(self) -> int:
        return self._size

    def append(self, entry: bytes) -> int:
        """Hash and add one entry; returns its index."""
        return self.append_leaf_hash(leaf_hash(entry))

    def append_leaf_hash(self, h: bytes) -> int:
        if len(h) != HASH_SIZE:
            raise ValueError("a leaf hash is 32 bytes")
        index = self._size
        levels = self._levels
        levels[0] += h
        self._size += 1
        # Each trailing 1-bit of the new size completes one more perfect subtree.
        n, height, cur = self._size, 0, h
        while n & 1 == 0:
            left = levels[height][-2 * HASH_SIZE : -HASH_SIZE]
            cur = node_hash(bytes(left), cur)
            height += 1
            if height == len(levels):
                levels.append(bytearray())
            levels[height] += cur
            n >>= 1
        return index

    def leaf_hash(self, index: int) -> bytes:
        if not 0 <= index < self._size:
            raise IndexError(index)
        return bytes(self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def _node(self, height: int, i: int) -> bytes:
        off = i * HASH_SIZE
        return bytes(self._levels[height][off : off + HASH_SIZE])

    def _range_hash(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) where lo is aligned to a power of two ≥ hi − lo.

        Every subtree that appears in RFC 9162's recursive proofs has that shape, so the
        range splits into stored perfect subtrees (one per 1-bit of hi − lo) folded
        right to left.
        """
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        parts: list[bytes] = []
        pos = lo
        for height in range(n.bit_length() - 1, -1, -1):
            if n >> height & 1:
                parts.append(self._node(height, pos >> height))
                pos += 1 << height
        acc = parts[-1]
        for h in reversed(parts[:-1]):
            acc = node_hash(h, acc)
        return acc

    def root(self, size: int | None = None) -> bytes:
        """Root of the tree as it was at `size` entries (default: now)."""
        size = self._size if size is None else size
        if not 0 <= size <= self._size:
            raise ValueError(f"size {size} outside 0..{self._size}")
        return self._range_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self._size if size is None else size
        if not 0 <= index < size <= self._size:
            raise ValueError(f"no inclusion proof for index {index} in a tree of size {size}")
        proof: list[bytes] = []
        lo, hi, m = 0, size, index
        # Iterative PATH(m, D[lo:hi]); siblings are collected top-down, then reversed
        # because the RFC lists them leaf-first.
        while hi - lo > 1:
            k = _split(hi - lo)
            if m < k:
                proof.append(self._range_hash(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range_hash(lo, lo + k))
                lo += k
                m -= k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self._size if new_size is None else new_size
        if not 0 <= old_size <= new_size <= self._size:
            raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
        if old_size == 0 or old_size == new_size:
            return []
        proof: list[bytes] = []
        lo, hi, m, complete = 0, new_size, old_size, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:
                proof.append(self._range_hash(lo + k, hi))
                hi = lo + k
            else:
                proof.append(self._range_hash(lo, lo + k))
                lo += k
                m -= k
                complete = False
        if not complete:
            proof.append(self._range_hash(lo, hi))
        proof.reverse()
        return proof
