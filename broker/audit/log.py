"""The log maintainer: sequences audit events into chained records, keeps the Merkle
tree and signs tree heads. The one implementation of appending, chaining and heads:
in-memory use (tests, demo, bench) and the NATS sequencer (broker/audit/sequencer.py)
both go through it.

Intended use by a maintainer whose storage is a JetStream stream, with one active
maintainer:

    sealed = log.seal_batch(events)         # next indexes + back-links, as bytes
    publish each sealed[i].entry to "orcon.audit" with header
        Nats-Expected-Last-Sequence = sealed[i].index
    log.commit(sealed)                      # only after JetStream stored every one
    ... periodically: publish log.head(now)

Entry index = JetStream stream sequence − 1. The expected-last-sequence header makes
JetStream refuse a record from a second, stale writer instead of storing a fork; that
writer then rebuilds from the stream and reseals. A sealed record carries its leaf
hash, computed once: `commit` appends it without decoding or hashing again (the log
encoded it, so its index and link are right by construction; `commit` still checks
that the batch continues the log as it is now).

Rebuilding from the stream: `append` (strict: refuses a record whose index or
back-link does not continue the log, so a maintainer never extends a log it could not
itself verify) for entries of unknown origin, `adopt` for entries that are already in
append-only storage and so are leaves whatever they hold: it checks the same chain and
reports what is wrong (a foreign entry, a broken link) instead of refusing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.audit.events import (
    GENESIS_PREV,
    AuditEvent,
    LogRecord,
    decode_record,
    encode_record,
)
from broker.audit.heads import SignedTreeHead, key_id_for, raw_public_key, sign_head
from broker.audit.merkle import MerkleTree, leaf_hash


class AuditLogError(Exception):
    """A record that does not continue the log (wrong index, broken back-link, garbage)."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A record this log encoded as entry `index`, not appended yet: its bytes, the leaf
    hash it links to (`prev`) and its own leaf hash (`leaf`), each computed once."""

    index: int
    prev: bytes
    entry: bytes
    leaf: bytes


# What `adopt` found wrong with a stored entry: not a log record of this index
# ("foreign": garbage, another format, a wrong index) or a record whose back-link names
# another entry than the one before it ("chain_break").
Fault = Literal["foreign", "chain_break"]


@dataclass(frozen=True, slots=True)
class Adopted:
    """A stored entry, now leaf `index`: its record when it is one (None when foreign)
    and what is wrong with it, if anything."""

    index: int
    record: LogRecord | None
    fault: Fault | None


class AuditLog:
    def __init__(
        self,
        signing_key: Ed25519PrivateKey,
        key_id: str | None = None,
        *,
        keep_entries: bool = True,
    ) -> None:
        self._key = signing_key
        self.public_key = raw_public_key(signing_key.public_key())
        self.key_id = key_id or key_id_for(self.public_key)
        self._tree = MerkleTree()
        # A maintainer fed from JetStream can drop entries (the stream keeps them);
        # in-memory use (tests, demo, fetch) keeps them for bundles.
        self._entries: list[bytes] | None = [] if keep_entries else None
        self._last = GENESIS_PREV

    @classmethod
    def replay(
        cls,
        entries: Iterable[bytes],
        signing_key: Ed25519PrivateKey,
        key_id: str | None = None,
        *,
        keep_entries: bool = True,
    ) -> AuditLog:
        log = cls(signing_key, key_id, keep_entries=keep_entries)
        for e in entries:
            log.append(e)
        return log

    @property
    def size(self) -> int:
        return self._tree.size

    @property
    def tree(self) -> MerkleTree:
        return self._tree

    def seal(self, event: AuditEvent) -> bytes:
        """The record bytes that would be entry `size`; does not append."""
        return encode_record(LogRecord(self._tree.size, self._last, event))

    def seal_batch(self, events: Iterable[AuditEvent]) -> list[Sealed]:
        """The records that would be the next entries, chained to each other and to the
        log as it is; does not append (see `commit`)."""
        index, prev, out = self._tree.size, self._last, []
        for event in events:
            entry = encode_record(LogRecord(index, prev, event))
            leaf = leaf_hash(entry)
            out.append(Sealed(index, prev, entry, leaf))
            index, prev = index + 1, leaf
        return out

    def commit(self, sealed: Sequence[Sealed]) -> None:
        """Append records from `seal_batch` once storage holds them. Refuses a batch that
        no longer continues the log (it was sealed before another append)."""
        if not sealed:
            return
        if sealed[0].index != self.size or sealed[0].prev != self._last:
            raise AuditLogError(f"sealed batch starts at {sealed[0].index}, the log is "
                                f"at {self.size}: it was sealed against an older log")
        tree, keep = self._tree, self._entries
        for s in sealed:
            tree.append_leaf_hash(s.leaf)
            if keep is not None:
                keep.append(s.entry)
        self._last = sealed[-1].leaf

    def _check(self, entry: bytes) -> tuple[LogRecord | None, Fault | None, str]:
        try:
            rec = decode_record(entry)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return None, "foreign", f"entry {self.size} is not a log record: {exc}"
        if rec.index != self.size:
            return None, "foreign", (f"record carries index {rec.index}, "
                                     f"the log expects {self.size}")
        if rec.prev != self._last:
            return rec, "chain_break", f"record {rec.index} does not link to entry {rec.index - 1}"
        return rec, None, ""

    def _append_leaf(self, entry: bytes) -> int:
        h = leaf_hash(entry)
        index = self._tree.append_leaf_hash(h)
        self._last = h
        if self._entries is not None:
            self._entries.append(entry)
        return index

    def append(self, entry: bytes) -> int:
        _, fault, why = self._check(entry)
        if fault is not None:
            raise AuditLogError(why)
        return self._append_leaf(entry)

    def adopt(self, entry: bytes) -> Adopted:
        """An entry already in append-only storage becomes the next leaf whatever it
        holds (the tree must match the storage for heads to verify); the chain check
        of `append` is reported, not enforced, and the chain goes on from this entry."""
        rec, fault, _ = self._check(entry)
        return Adopted(self._append_leaf(entry), rec, fault)

    def add(self, event: AuditEvent) -> int:
        """seal + append, for a maintainer that is its own storage (tests, demo)."""
        return self.append(self.seal(event))

    def entry(self, index: int) -> bytes:
        if self._entries is None:
            raise AuditLogError("this log does not keep entries; read them from the stream")
        return self._entries[index]

    def entries(self) -> list[bytes]:
        if self._entries is None:
            raise AuditLogError("this log does not keep entries; read them from the stream")
        return list(self._entries)

    def root(self, size: int | None = None) -> bytes:
        return self._tree.root(size)

    def head(self, now: datetime) -> SignedTreeHead:
        size = self._tree.size
        return sign_head(size, self._tree.root(size), now, self._key, self.key_id)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return self._tree.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return self._tree.consistency_proof(old_size, new_size)
