"""The key directory: agencies' public keys, each entry signed by the federation root.

Whoever serves the directory (the broker, a file) is untrusted: every entry and the
revocation list are verified against the pinned root public key before use, and an entry
or list with a lower serial than one already accepted is refused, so a stale copy cannot
resurrect a rotated-out or revoked key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from keys.errors import (
    CryptoError,
    DirectoryError,
    KeyExpired,
    KeyFileError,
    KeyRevoked,
    RollbackError,
    UnknownRecipient,
)
from keys.identity import SIGN_ALG, SUITES, Rand, Recipient, _utc, key_id
from keys.keyfile import open_file, seal_file
from keys.records import (
    ENTRY_LABEL,
    REGISTRY_LABEL,
    REVOCATIONS_LABEL,
    DirectoryEntry,
    PublicKey,
    RegistryRecord,
    Revocation,
    RevocationList,
    SignedEntry,
    SignedRegistry,
    SignedRevocations,
    encoder,
)
from schemas.codes import Level
from schemas.ids import PARTY_NAME_RE

__all__ = [
    "Directory",
    "DirectoryEntry",
    "FederationRoot",
    "PublicKey",
    "RegistryRecord",
    "Revocation",
    "RevocationList",
    "SignedEntry",
    "SignedRegistry",
    "SignedRevocations",
    "next_serial",
    "verify_registry",
]

_AGENCY = PARTY_NAME_RE
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _RootSecret(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    secret: bytes
    created_at: datetime


class FederationRoot:
    """The offline root key that vouches for every directory entry and revocation."""

    def __init__(self, private: Ed25519PrivateKey, created_at: datetime) -> None:
        self._private = private
        self.created_at = created_at
        self.public_bytes = private.public_key().public_bytes_raw()
        self.key_id = key_id(SIGN_ALG, self.public_bytes)

    @classmethod
    def generate(cls, now: datetime | None = None, *, rand: Rand | None = None) -> FederationRoot:
        if rand is None:
            return cls(Ed25519PrivateKey.generate(), _utc(now))
        return cls(Ed25519PrivateKey.from_private_bytes(rand(32)), _utc(now))

    def sign_entry(self, entry: DirectoryEntry) -> SignedEntry:
        data = encoder.encode(entry)
        return SignedEntry(entry=data, signature=self._private.sign(ENTRY_LABEL + data))

    def sign_revocations(self, revocation_list: RevocationList) -> SignedRevocations:
        data = encoder.encode(revocation_list)
        return SignedRevocations(
            revocations=data, signature=self._private.sign(REVOCATIONS_LABEL + data)
        )

    def sign_registry(self, record: RegistryRecord) -> SignedRegistry:
        data = encoder.encode(record)
        return SignedRegistry(registry=data, signature=self._private.sign(REGISTRY_LABEL + data))

    def save(self, path: Path | str, passphrase: str, *, fast: bool = False) -> None:
        secret = _RootSecret(self._private.private_bytes_raw(), self.created_at)
        seal_file(path, "root", encoder.encode(secret), passphrase, fast=fast)

    @classmethod
    def load(cls, path: Path | str, passphrase: str) -> FederationRoot:
        plaintext = open_file(path, "root", passphrase)
        try:
            r = msgspec.msgpack.decode(plaintext, type=_RootSecret)
            return cls(Ed25519PrivateKey.from_private_bytes(r.secret), r.created_at)
        except (msgspec.DecodeError, ValueError):
            raise KeyFileError(f"{path}: unreadable root key") from None

    def __repr__(self) -> str:
        return f"FederationRoot({self.key_id!r})"


def next_serial(current: int, now: datetime) -> int:
    """The serial for the next version of a root-signed record: `now` in milliseconds
    (so serials stay increasing without the operator keeping a counter, given a synced
    clock) and never below `current + 1`."""
    return max(int(_utc(now).timestamp() * 1000), current + 1)


def verify_registry(signed: SignedRegistry | bytes, root_public: bytes) -> RegistryRecord:
    """The registry record the root signed. CryptoError if the root did not sign it
    (unsigned, altered, another key); DirectoryError if it is not a signed registry."""
    try:
        root = Ed25519PublicKey.from_public_bytes(root_public)
    except ValueError:
        raise DirectoryError("the root public key is not an Ed25519 key") from None
    s = _decode(signed, SignedRegistry)
    _verify(root, s.signature, REGISTRY_LABEL + s.registry)
    return _decode(s.registry, RegistryRecord)


class _DirectoryFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    entries: list[SignedEntry]
    revocations: SignedRevocations | None = None


def _verify(public: Ed25519PublicKey, signature: bytes, data: bytes) -> None:
    try:
        public.verify(signature, data)
    except InvalidSignature:
        raise CryptoError() from None


def _check_entry(e: DirectoryEntry) -> None:
    if not _AGENCY.match(e.agency):
        raise DirectoryError(f"entry agency {e.agency!r} is not a valid agency id")
    if e.clearance not in Level.__members__.values():
        raise DirectoryError(f"{e.agency}: clearance {e.clearance!r} is not a Level")
    for pk in e.sign_keys + e.kem_keys:
        if key_id(pk.alg, pk.public) != pk.key_id:
            raise DirectoryError(f"{e.agency}: key id {pk.key_id} does not match its key")
    for pk in e.sign_keys:
        if pk.alg != SIGN_ALG or len(pk.public) != 32:
            raise DirectoryError(f"{e.agency}: signing key {pk.key_id} is not Ed25519")


class Directory:
    def __init__(self, root_public: bytes) -> None:
        try:
            self._root = Ed25519PublicKey.from_public_bytes(root_public)
        except ValueError:
            raise DirectoryError("the root public key is not an Ed25519 key") from None
        self.root_public = bytes(root_public)
        self._signed: dict[str, SignedEntry] = {}
        self._entries: dict[str, DirectoryEntry] = {}
        self._signed_revocations: SignedRevocations | None = None
        self._revocations = RevocationList(serial=0, issued_at=_EPOCH)
        self._revoked: dict[str, Revocation] = {}
        # Parsed verification keys by their bytes (a key's bytes never change meaning):
        # every message verified would otherwise parse its sender's key again.
        self._verifiers: dict[bytes, Ed25519PublicKey] = {}

    # -- updates -------------------------------------------------------------------------
    def add(self, signed_entry: SignedEntry | bytes) -> DirectoryEntry:
        """Verify and store an entry. CryptoError if the root did not sign it;
        DirectoryError if it is malformed or older than the entry already held."""
        signed = _decode(signed_entry, SignedEntry)
        _verify(self._root, signed.signature, ENTRY_LABEL + signed.entry)
        entry = _decode(signed.entry, DirectoryEntry)
        _check_entry(entry)
        known = self._entries.get(entry.agency)
        if known is not None:
            if self._signed[entry.agency].entry == signed.entry:
                return known
            if entry.serial <= known.serial:
                raise RollbackError(
                    f"{entry.agency}: entry serial {entry.serial} is not newer than "
                    f"{known.serial} (rollback refused)"
                )
        self._signed[entry.agency], self._entries[entry.agency] = signed, entry
        return entry

    def set_revocations(self, signed: SignedRevocations | bytes) -> None:
        s = _decode(signed, SignedRevocations)
        _verify(self._root, s.signature, REVOCATIONS_LABEL + s.revocations)
        rl = _decode(s.revocations, RevocationList)
        current = self._signed_revocations
        same = current is not None and current.revocations == s.revocations
        if current is not None and not same and rl.serial <= self._revocations.serial:
            raise RollbackError(
                f"revocation list serial {rl.serial} is not newer than "
                f"{self._revocations.serial} (rollback refused)"
            )
        revoked: dict[str, Revocation] = {}
        for r in rl.revocations:  # a key revoked twice counts from the earlier time
            if r.key_id not in revoked or r.revoked_at < revoked[r.key_id].revoked_at:
                revoked[r.key_id] = r
        self._signed_revocations, self._revocations, self._revoked = s, rl, revoked

    def successor(self, new: Directory) -> Directory:
        """`new`, if it takes nothing back from this directory: every entry held here is
        in `new` unchanged or with a higher serial, and the revocation list is unchanged
        or has a higher serial. Each version the root ever signed verifies forever, so a
        directory loaded on its own cannot tell an old copy from the current one; this
        comparison is what stops a replayed copy from undoing a rotation or revocation.
        RollbackError naming what would go back otherwise."""
        if new.root_public != self.root_public:
            raise DirectoryError("the new directory is verified against another root key")
        for agency, signed in self._signed.items():
            held = self._entries[agency]
            theirs = new._signed.get(agency)
            if theirs is None:
                raise RollbackError(
                    f"{agency}: entry (serial {held.serial}) missing from the new directory"
                )
            if theirs.entry != signed.entry and new._entries[agency].serial <= held.serial:
                raise RollbackError(
                    f"{agency}: entry serial {new._entries[agency].serial} is not newer "
                    f"than {held.serial} (rollback refused)"
                )
        mine, theirs_rl = self._signed_revocations, new._signed_revocations
        if mine is not None and (theirs_rl is None or (
                theirs_rl.revocations != mine.revocations
                and new._revocations.serial <= self._revocations.serial)):
            got = "none" if theirs_rl is None else str(new._revocations.serial)
            raise RollbackError(
                f"revocation list serial {got} is not newer than "
                f"{self._revocations.serial} (rollback refused)"
            )
        return new

    # -- queries -------------------------------------------------------------------------
    def entry(self, agency: str) -> DirectoryEntry:
        try:
            return self._entries[agency]
        except KeyError:
            raise UnknownRecipient(f"{agency} is not in the key directory") from None

    def agencies(self) -> list[str]:
        return sorted(self._entries)

    @property
    def revocations(self) -> RevocationList:
        return self._revocations

    def revocation(self, kid: str) -> Revocation | None:
        return self._revoked.get(kid)

    def find_key(self, kid: str) -> tuple[str, PublicKey]:
        """The agency publishing a key id, and the key."""
        for e in self._entries.values():
            for pk in e.sign_keys + e.kem_keys:
                if pk.key_id == kid:
                    return e.agency, pk
        raise UnknownRecipient(f"no agency publishes key {kid}")

    def recipients_for(self, agency: str, now: datetime) -> list[Recipient]:
        """The key to seal to for `agency` at `now`: among its KEM keys that are valid and
        not revoked, the newest of the strongest suite. One key, not all: during a
        rotation overlap the old key only serves senders with a stale directory, and a
        classical stanza next to a post-quantum one would undo the latter."""
        e = self.entry(agency)
        known = [pk for pk in e.kem_keys if pk.alg in SUITES]
        revoked = [pk for pk in known if self._revoked_at(pk.key_id, now)]
        valid = [pk for pk in known if pk not in revoked and pk.valid_at(now)]
        if not valid:
            if revoked:
                raise KeyRevoked(f"{agency}: every usable KEM key is revoked")
            if known:
                raise KeyExpired(f"{agency}: no KEM key is valid at {now.isoformat()}")
            raise UnknownRecipient(f"{agency} publishes no KEM key of a supported suite")
        best = min(valid, key=lambda pk: (SUITES.index(pk.alg), -pk.not_before.timestamp()))
        return [Recipient(agency, best.key_id, best.alg, best.public)]

    def signing_key(
        self, agency: str, key_id: str, now: datetime, created_at: datetime | None = None
    ) -> Ed25519PublicKey:
        """The sender's verification key for a message created at `created_at` (default
        `now`). A revoked key still verifies what was created before its revocation time;
        a holder of a compromised key can backdate, which is why the broker bounds
        `created_at` by its own clock and judges revocation by when it receives a
        message (broker/routing/service.py)."""
        e = self.entry(agency)
        pk = next((k for k in e.sign_keys if k.key_id == key_id), None)
        if pk is None:
            raise UnknownRecipient(f"{agency} publishes no signing key {key_id}")
        when = created_at if created_at is not None else now
        if self._revoked_at(key_id, when):
            raise KeyRevoked(f"{agency}: signing key {key_id} is revoked")
        if not pk.valid_at(when):
            raise KeyExpired(f"{agency}: signing key {key_id} is not valid at {when.isoformat()}")
        verifier = self._verifiers.get(pk.public)
        if verifier is None:
            verifier = self._verifiers[pk.public] = Ed25519PublicKey.from_public_bytes(pk.public)
        return verifier

    def _revoked_at(self, kid: str, when: datetime) -> bool:
        r = self._revoked.get(kid)
        return r is not None and when >= r.revoked_at

    # -- storage -------------------------------------------------------------------------
    def dump(self) -> bytes:
        """Every signed entry and the signed revocation list, as received: the file can
        be served by anyone, since `load` verifies it all again."""
        entries = [self._signed[a] for a in sorted(self._signed)]
        return encoder.encode(_DirectoryFile(entries, self._signed_revocations))

    @classmethod
    def load(cls, data: bytes, root_public: bytes) -> Directory:
        d = cls(root_public)
        f = _decode(data, _DirectoryFile)
        for signed in f.entries:
            d.add(signed)
        if f.revocations is not None:
            d.set_revocations(f.revocations)
        return d


_T = TypeVar("_T")


def _decode(data: _T | bytes, type_: type[_T]) -> _T:
    if isinstance(data, type_):
        return data
    try:
        return msgspec.msgpack.decode(data, type=type_)  # type: ignore[arg-type]
    except msgspec.DecodeError as exc:
        raise DirectoryError(f"malformed {type_.__name__}: {exc}") from None
