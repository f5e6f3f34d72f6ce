"""The log maintainer: sequences audit events into chained records, keeps the Merkle
tree and signs tree heads.

Intended use by the NATS side (broker/audit/sequencer.py), with one active maintainer:

    record = log.seal(event)                 # next index + back-link, as bytes
    publish "orcon.audit" record with header Nats-Expected-Last-Sequence = log.size
    log.append(record)                       # only after JetStream stored it
    ... periodically: publish log.head(now)

Entry index = JetStream stream sequence − 1. The expected-last-sequence header makes
JetStream refuse a record from a second, stale writer instead of storing a fork; that
writer then catches up with `append` from the stream and reseals. On restart,
`AuditLog.replay(...)` rebuilds the tree from the stream.

`append` refuses a record whose index or back-link does not continue the log: the
maintainer must never extend a log it could not itself verify.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

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

    def append(self, entry: bytes) -> int:
        try:
            rec = decode_record(entry)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise AuditLogError(f"entry {self.size} is not a log record: {exc}") from None
        if rec.index != self.size:
            raise AuditLogError(f"record carries index {rec.index}, the log expects {self.size}")
        if rec.prev != self._last:
            raise AuditLogError(f"record {rec.index} does not link to entry {rec.index - 1}")
        h = leaf_hash(entry)
        index = self._tree.append_leaf_hash(h)
        self._last = h
        if self._entries is not None:
            self._entries.append(entry)
        return index

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
