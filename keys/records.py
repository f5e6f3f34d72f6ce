"""The records the federation root signs (msgspec Structs, msgpack on the wire): the
key directory's entries and revocation list, and the federation registry.

The root signs the exact msgpack bytes of a record, and those bytes travel next to the
signature (`SignedEntry.entry`): a verifier decodes what was signed and never
re-encodes a structure to check it. Each record carries a serial that only goes up:
every version the root ever signed verifies forever, so only the serial tells a replayed
old version from the current one.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from schemas.entities import Timestamp  # zone-aware: a naive time is a decode error


class PublicKey(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A published key. `alg` is "ed25519" for a signing key and the suite name
    ("x25519", "mlkem768x25519") for a KEM key."""

    key_id: str
    alg: str
    public: bytes
    not_before: Timestamp
    not_after: Timestamp | None = None

    def valid_at(self, when: datetime) -> bool:
        return self.not_before <= when and (self.not_after is None or when < self.not_after)


class DirectoryEntry(
    msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True, kw_only=True
):
    """One agency's public keys and attributes, as vouched for by the federation root.
    `serial` only ever grows for an agency: a lower serial is a rollback."""

    agency: str
    country: str
    roles: list[str]
    clearance: str  # a schemas.Level value
    sign_keys: list[PublicKey]
    kem_keys: list[PublicKey]
    issued_at: Timestamp
    serial: int


class SignedEntry(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True):
    entry: bytes  # the exact msgpack bytes of a DirectoryEntry
    signature: bytes  # Ed25519 by the root over ENTRY_LABEL || entry


class Revocation(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True):
    """`revoked_at` is when the key stopped being trustworthy: for a suspected
    compromise the operator backdates it to the estimated time of compromise."""

    key_id: str
    agency: str
    revoked_at: Timestamp
    reason: str


class RevocationList(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True):
    serial: int
    issued_at: Timestamp
    revocations: list[Revocation] = []


class SignedRevocations(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True):
    revocations: bytes  # the exact msgpack bytes of a RevocationList
    signature: bytes  # Ed25519 by the root over REVOCATIONS_LABEL || revocations


class RegistryRecord(
    msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True, kw_only=True
):
    """One version of the federation registry (agencies, groups, agreements). The TOML
    text is signed as written, so what operators review is byte for byte what brokers
    enforce."""

    serial: int
    issued_at: datetime
    federation: bytes  # UTF-8 TOML, as policies.federation reads it


class SignedRegistry(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True):
    registry: bytes  # the exact msgpack bytes of a RegistryRecord
    signature: bytes  # Ed25519 by the root over REGISTRY_LABEL || registry


# Domain separation: a signature over one kind of record never verifies as another.
ENTRY_LABEL = b"orcon/v1/directory-entry\x00"
REVOCATIONS_LABEL = b"orcon/v1/revocation-list\x00"
REGISTRY_LABEL = b"orcon/v1/federation-registry\x00"

encoder = msgspec.msgpack.Encoder()
