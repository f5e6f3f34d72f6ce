"""Offline verification of a fetched audit bundle.

Trust model: entries are untrusted (they come from a stream an insider could edit); a
signed tree head is a statement by the log key. A verifier therefore:

1. recomputes the Merkle tree from the entries and, while streaming, checks each
   record's chain (`index` = position, `prev` = leaf hash of the previous entry);
2. checks every head's signature (against a pinned key when the auditor gives one);
3. checks each head's root against the recomputed tree at that size, heads of equal
   size for equal roots, and successive heads for RFC 9162 consistency.

Naming the first bad entry: the chain break localises naive tampering to one entry
(each case below is diagnosed from the records around the break). If an attacker
rewrote the chain consistently from some point on, only the signed heads remain, and
they localise the damage to the range between the last head that still matches and
the first that does not; the report then names the first entry of that range, which
is the earliest entry that cannot be authenticated. Bisection against the heads alone
could never do better than that range, which is why the records carry the chain.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker.audit.events import GENESIS_PREV, decode_record
from broker.audit.heads import SignedTreeHead, verify_head
from broker.audit.merkle import HASH_SIZE, MerkleTree, leaf_hash, verify_consistency
from broker.audit.store import MAGIC, iter_entries, read_heads, read_public_key

Progress = Callable[[int, int], None]
"""Called with (bytes read, total bytes of entries.bin) as verification streams."""

# Problem kinds, stable strings the CLI and tests rely on.
MODIFIED = "modified"
DELETED = "deleted"
INSERTED = "inserted"
REORDERED = "reordered"
DUPLICATED = "duplicated"
FORK = "fork"
HEAD_MISMATCH = "head-mismatch"
BAD_SIGNATURE = "bad-signature"
KEY_MISMATCH = "key-mismatch"
ROLLBACK = "rollback"
UNSIGNED = "unsigned"


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str
    message: str
    entry: int | None = None  # position in the bundle of the first entry concerned
    head: int | None = None  # line number (1-based) of the head in heads.jsonl


@dataclass(slots=True)
class VerifyReport:
    entries: int
    heads: int
    root: bytes
    verified_size: int  # the largest signed size whose root matched the entries
    problems: list[Problem] = field(default_factory=list)
    consistency_proofs: int = 0  # between successive signed sizes, each checked

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad(self) -> int | None:
        positions = [p.entry for p in self.problems if p.entry is not None]
        return min(positions) if positions else None

    @property
    def first_problem(self) -> Problem | None:
        if not self.problems:
            return None
        bad = self.first_bad
        if bad is None:
            return self.problems[0]
        return next(p for p in self.problems if p.entry == bad)

    def summary(self) -> str:
        if self.ok:
            tail = self.entries - self.verified_size
            extra = f"; {tail} newer entries not yet covered by a signed head" if tail else ""
            return (
                f"valid: {self.entries} entries, {self.heads} signed heads, "
                f"root {self.root.hex()}{extra}"
            )
        first = self.first_problem
        assert first is not None
        where = f"first bad entry: {self.first_bad}: " if self.first_bad is not None else ""
        return f"INVALID ({len(self.problems)} problem(s)); {where}{first.message}"


class _Chain:
    """Per-position record fields in flat arrays (≈40 bytes per entry at a million)."""

    def __init__(self) -> None:
        self.index = array("q")
        self.prev = bytearray()

    def add(self, index: int, prev: bytes) -> None:
        self.index.append(index)
        self.prev += prev

    def prev_at(self, pos: int) -> bytes:
        return bytes(self.prev[pos * HASH_SIZE : (pos + 1) * HASH_SIZE])


def _diagnose(i: int, chain: _Chain, tree: MerkleTree, matched_sizes: set[int]) -> Problem:
    """Explain the first chain break at position i (positions < i chain correctly)."""
    n = tree.size
    idx = chain.index

    def expected_prev(pos: int) -> bytes:
        return GENESIS_PREV if pos == 0 else tree.leaf_hash(pos - 1)

    def positions_of(index: int) -> list[int]:
        return [p for p in range(n) if idx[p] == index]

    k = idx[i]
    if k < 0:
        return Problem(MODIFIED, f"entry {i} was modified: it is not a valid log record", i)
    if k == i:
        if i > 0 and i not in matched_sizes:
            return Problem(
                MODIFIED,
                f"entry {i - 1} was modified: entry {i} records a different hash for it",
                i - 1,
            )
        # Entry i-1 is vouched for by a signed head (or i = 0): the fault is entry i.
        what = "the start of the log" if i == 0 else f"entry {i - 1}"
        return Problem(MODIFIED, f"entry {i} was modified: it does not link to {what}", i)
    if k > i:
        genuine = k > 0 and any(
            tree.leaf_hash(q) == chain.prev_at(i) for q in positions_of(k - 1)
        )
        next_links_back = (
            i + 1 < n and idx[i + 1] == i and chain.prev_at(i + 1) == expected_prev(i)
        )
        if next_links_back and not genuine:
            return Problem(
                INSERTED,
                f"entry at position {i} was inserted: it claims index {k}, and the next "
                f"entry carries index {i} and links to entry {i - 1}",
                i,
            )
        later = [p for p in positions_of(i) if p > i]
        if later:
            return Problem(
                REORDERED,
                f"entries reordered: position {i} holds entry {k}, entry {i} is at "
                f"position {later[0]}",
                i,
            )
        missing = f"entry {i} is" if k == i + 1 else f"entries {i}..{k - 1} are"
        return Problem(DELETED, f"{missing} missing: position {i} holds entry {k}", i)
    # k < i: the index was already used at position k.
    if tree.leaf_hash(i) == tree.leaf_hash(k):
        return Problem(DUPLICATED, f"entry at position {i} is a replay of entry {k}", i)
    if k == i - 1 and chain.prev_at(i) == expected_prev(i - 1):
        return Problem(
            INSERTED,
            f"entry at position {i - 1} was inserted: positions {i - 1} and {i} both claim "
            f"index {k}, and the log continues from the entry at position {i}",
            i - 1,
        )
    return Problem(
        INSERTED,
        f"entry at position {i} was inserted: it claims index {k}, already at position {k}",
        i,
    )


def verify_bundle(
    directory: str | os.PathLike[str],
    progress: Progress | None = None,
    *,
    log_public_key: bytes | None = None,
) -> VerifyReport:
    """Verify DIR as written by `store.write_bundle`. `log_public_key` (raw 32 bytes)
    pins the key the auditor expects; without it the bundle's own key is used."""
    d = Path(directory)
    total = os.path.getsize(d / "entries.bin")
    tree = MerkleTree()
    chain = _Chain()
    first_break: int | None = None
    last = GENESIS_PREV
    done = len(MAGIC)
    for pos, data in enumerate(iter_entries(d)):
        h = leaf_hash(data)
        tree.append_leaf_hash(h)
        try:
            rec = decode_record(data)
            index, prev = rec.index, rec.prev
        except (msgspec.DecodeError, msgspec.ValidationError):
            index, prev = -1, bytes(HASH_SIZE)
        chain.add(index, prev)
        if first_break is None and (index != pos or prev != last):
            first_break = pos
        last = h
        done += 4 + len(data)
        if progress is not None and pos % 4096 == 0:
            progress(done, total)
    if progress is not None:
        progress(total, total)
    n = tree.size

    problems: list[Problem] = []
    bundle_key = read_public_key(d)
    key = bundle_key
    if log_public_key is not None and log_public_key != bundle_key:
        problems.append(
            Problem(KEY_MISMATCH, "the bundle's log key is not the pinned key; verifying with "
                    "the pinned key")
        )
        key = log_public_key
    pk = Ed25519PublicKey.from_public_bytes(key)

    valid: list[tuple[int, SignedTreeHead]] = []  # (line number, head)
    heads = read_heads(d)
    for line, head in enumerate(heads, 1):
        if verify_head(head, pk):
            valid.append((line, head))
        else:
            problems.append(
                Problem(
                    BAD_SIGNATURE,
                    f"head on line {line} (size {head.size}): bad signature",
                    head=line,
                )
            )
    if n > 0 and not valid:
        problems.append(Problem(UNSIGNED, "no validly signed tree head vouches for the entries"))

    # Equal sizes must have equal roots, whatever the entries say.
    by_size: dict[int, tuple[int, SignedTreeHead]] = {}
    for line, head in valid:
        seen = by_size.get(head.size)
        if seen is None:
            by_size[head.size] = (line, head)
        elif seen[1].root != head.root:
            problems.append(
                Problem(
                    FORK,
                    f"fork: heads on lines {seen[0]} and {line} both sign size {head.size} "
                    "with different roots",
                    head=line,
                )
            )

    # Time must not run backwards in size: a later head for a smaller tree is a rollback.
    by_time = sorted(valid, key=lambda lh: lh[1].timestamp)
    for (la, a), (lb, b) in pairwise(by_time):
        if b.size < a.size:
            problems.append(
                Problem(
                    ROLLBACK,
                    f"rollback: head on line {lb} (size {b.size}) is later than head on "
                    f"line {la} (size {a.size})",
                    head=lb,
                )
            )

    matched: set[int] = set()
    mismatched: list[tuple[int, SignedTreeHead]] = []
    for line, head in valid:
        if head.size <= n:
            if tree.root(head.size) == head.root:
                matched.add(head.size)
            else:
                mismatched.append((line, head))
    verified_size = max(matched, default=0)

    chain_problem: Problem | None = None
    if first_break is not None:
        chain_problem = _diagnose(first_break, chain, tree, matched)
        problems.append(chain_problem)

    # Consistency between successive signed sizes that the entries reach. If the larger
    # head matches the entries, a failure means the smaller head signed another history.
    sizes = sorted(by_size)
    reach = [s for s in sizes if s <= n]
    proofs = 0
    for a_size, b_size in pairwise(reach):
        (la, a), (lb, b) = by_size[a_size], by_size[b_size]
        proof = tree.consistency_proof(a_size, b_size)
        proofs += 1
        if b_size in matched and not verify_consistency(a_size, b_size, a.root, b.root, proof):
            problems.append(
                Problem(
                    FORK,
                    f"fork: head on line {la} (size {a_size}) is inconsistent with head on "
                    f"line {lb} (size {b_size}), which the entries match",
                    head=la,
                )
            )

    reported = {p.head for p in problems if p.kind == FORK}
    for line, head in mismatched:
        if any(s > head.size for s in matched):
            # A larger head vouches for these entries, so this head signed another
            # history: equivocation by the log, not tampering with the entries.
            if line not in reported:
                problems.append(
                    Problem(
                        FORK,
                        f"fork: head on line {line} (size {head.size}) does not match the "
                        "entries that a larger signed head vouches for",
                        head=line,
                    )
                )
            continue
        if chain_problem is None:
            # The chain is intact, so it was rewritten consistently: only the heads can
            # bound the change.
            lo = max((s for s in matched if s < head.size), default=0)
            problems.append(
                Problem(
                    MODIFIED,
                    f"entries {lo}..{head.size - 1} do not hash to the root signed on line "
                    f"{line} (size {head.size}); their chain is intact, so only the signed "
                    f"heads bound the change: entry {lo} is the first that cannot be "
                    "authenticated",
                    lo,
                    line,
                )
            )
        else:
            problems.append(
                Problem(
                    HEAD_MISMATCH,
                    f"head on line {line} (size {head.size}) does not match the entries",
                    head=line,
                )
            )

    largest = max(sizes, default=0)
    if largest > n:
        line = by_size[largest][0]
        missing = "entry" if largest - n == 1 else "entries"
        problems.append(
            Problem(
                DELETED,
                f"{missing} {n}..{largest - 1} missing: head on line {line} signs "
                f"{largest} entries, the bundle has {n}",
                n,
                line,
            )
        )

    return VerifyReport(n, len(heads), tree.root(), verified_size, problems,
                        consistency_proofs=proofs)
