"""Signed tree heads: the log key's statement "the first `size` entries hash to `root`".

The signature covers a fixed binary encoding, never a re-serialised structure (no
canonicalisation bugs), prefixed with a domain label so a head signature can never be
replayed as a signature over anything else the key might sign:

    b"orcon/audit/tree-head/v1\\n"
    ‖ size        u64 big-endian
    ‖ timestamp   i64 big-endian, microseconds since the Unix epoch (UTC)
    ‖ root        32 bytes
    ‖ len(key_id) u16 big-endian ‖ key_id UTF-8
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from broker.audit.merkle import HASH_SIZE

HEAD_LABEL = b"orcon/audit/tree-head/v1\n"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    size: int
    root: bytes
    timestamp: datetime
    key_id: str
    signature: bytes

    def to_json(self) -> dict[str, str | int]:
        return {
            "size": self.size,
            "root": self.root.hex(),
            "timestamp": self.timestamp.isoformat(),
            "key_id": self.key_id,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> SignedTreeHead:
        size, root, ts = obj["size"], obj["root"], obj["timestamp"]
        key_id, sig = obj["key_id"], obj["signature"]
        if not (
            isinstance(size, int)
            and isinstance(root, str)
            and isinstance(ts, str)
            and isinstance(key_id, str)
            and isinstance(sig, str)
        ):
            raise ValueError("tree head fields have the wrong types")
        timestamp = datetime.fromisoformat(ts)
        if timestamp.tzinfo is None:
            raise ValueError("tree head timestamp must carry a time zone")
        return cls(size, bytes.fromhex(root), timestamp, key_id, bytes.fromhex(sig))


def _micros(ts: datetime) -> int:
    if ts.tzinfo is None:
        raise ValueError("tree head timestamps must be timezone-aware")
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def head_signing_bytes(size: int, root: bytes, timestamp: datetime, key_id: str) -> bytes:
    if size < 0 or len(root) != HASH_SIZE:
        raise ValueError("a tree head needs size ≥ 0 and a 32-byte root")
    kid = key_id.encode("utf-8")
    return (
        HEAD_LABEL
        + struct.pack(">Qq", size, _micros(timestamp))
        + root
        + struct.pack(">H", len(kid))
        + kid
    )


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id_for(public_key: Ed25519PublicKey | bytes) -> str:
    """First 16 hex digits of SHA-256 of the raw public key: short, stable, printable."""
    raw = public_key if isinstance(public_key, bytes) else raw_public_key(public_key)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_head(
    size: int, root: bytes, timestamp: datetime, private_key: Ed25519PrivateKey, key_id: str
) -> SignedTreeHead:
    sig = private_key.sign(head_signing_bytes(size, root, timestamp, key_id))
    return SignedTreeHead(size, root, timestamp, key_id, sig)


def verify_head(head: SignedTreeHead, public_key: Ed25519PublicKey | bytes) -> bool:
    pk = (
        Ed25519PublicKey.from_public_bytes(public_key)
        if isinstance(public_key, bytes)
        else public_key
    )
    try:
        msg = head_signing_bytes(head.size, head.root, head.timestamp, head.key_id)
        pk.verify(head.signature, msg)
    except (InvalidSignature, ValueError):
        return False
    return True
