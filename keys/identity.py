"""Agency identities (secret keys) and recipients (public KEM keys).

Modelled on age: `Recipient.wrap` seals a content key into one stanza for one recipient
key, `Identity.unwrap` opens a stanza addressed to a key the identity holds. The wrap is
HPKE base mode (RFC 9180) single-shot; the stanza's `enc` is the HPKE encapsulated key
followed by the sealed content key. The HPKE `info` binds the stanza to the message
(header hash), the recipient agency and the recipient key id, so a stanza copied into
another envelope, or relabelled for another recipient, no longer opens.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519

from keys.errors import CryptoError, DirectoryError, UnknownRecipient, UnsupportedSuite
from keys.records import DirectoryEntry, PublicKey
from schemas.clock import utcnow
from schemas.envelope import Stanza

Rand = Callable[[int], bytes]

SIGN_ALG = "ed25519"
X25519 = "x25519"
MLKEM768X25519 = "mlkem768x25519"
# Strongest first: a sender seals to an agency's post-quantum key when it has one, since
# an extra classical stanza would be the weak link for harvest-now-decrypt-later.
SUITES = (MLKEM768X25519, X25519)

_HPKE = {
    X25519: hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305),
    MLKEM768X25519: hpke.Suite(
        hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305
    ),
}
# Secret key encodings: X25519 raw scalar; hybrid = ML-KEM-768 seed (d || z, 64 bytes)
# || X25519 raw scalar. Public: X25519 raw; hybrid = ML-KEM-768 ek (1184) || X25519 (32),
# the X-Wing order.
_SECRET_SIZE = {SIGN_ALG: 32, X25519: 32, MLKEM768X25519: 64 + 32}
_PUBLIC_SIZE = {SIGN_ALG: 32, X25519: 32, MLKEM768X25519: 1184 + 32}

STANZA_LABEL = b"orcon/v1/stanza"
FILE_KEY_SIZE = 32

_HpkePrivate = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey
_HpkePublic = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey


def key_id(alg: str, public: bytes) -> str:
    """`<alg>:` + base64url-no-pad(SHA-256(public))[:22] (132 bits: collision-free for
    any realistic federation, short enough to read aloud)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(public).digest()).rstrip(b"=")
    return f"{alg}:{digest[:22].decode()}"


def _lp(data: bytes) -> bytes:
    """Length-prefixed (u16 big-endian), so concatenated fields cannot shift into each
    other ("AB" + "C" vs "A" + "BC")."""
    if len(data) > 0xFFFF:
        raise ValueError("field too long for a length prefix")
    return len(data).to_bytes(2, "big") + data


def stanza_info(header_hash: bytes, agency: str, kid: str) -> bytes:
    """The HPKE `info` of a stanza."""
    return _lp(STANZA_LABEL) + _lp(header_hash) + _lp(agency.encode()) + _lp(kid.encode())


def hpke_suite(suite: str) -> hpke.Suite:
    try:
        return _HPKE[suite]
    except KeyError:
        raise UnsupportedSuite(f"unsupported KEM suite {suite!r}") from None


def _utc(when: datetime | None) -> datetime:
    if when is None:
        return utcnow()
    if when.tzinfo is None:
        raise ValueError("naive datetime: orcon times are timezone-aware (UTC)")
    return when


def _kem_private(suite: str, secret: bytes) -> tuple[_HpkePrivate, bytes]:
    """The HPKE private key object and the public key bytes for a stored secret."""
    if suite == X25519:
        xk = x25519.X25519PrivateKey.from_private_bytes(secret)
        return xk, xk.public_key().public_bytes_raw()
    if suite == MLKEM768X25519:
        mk = mlkem.MLKEM768PrivateKey.from_seed_bytes(secret[:64])
        xk = x25519.X25519PrivateKey.from_private_bytes(secret[64:])
        public = mk.public_key().public_bytes_raw() + xk.public_key().public_bytes_raw()
        return hpke.MLKEM768X25519PrivateKey(mk, xk), public
    raise UnsupportedSuite(f"unsupported KEM suite {suite!r}")


def _kem_public(suite: str, public: bytes) -> _HpkePublic:
    if suite == X25519:
        return x25519.X25519PublicKey.from_public_bytes(public)
    if suite == MLKEM768X25519:
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(public[:1184]),
            x25519.X25519PublicKey.from_public_bytes(public[1184:]),
        )
    raise UnsupportedSuite(f"unsupported KEM suite {suite!r}")


@dataclass(frozen=True)
class Recipient:
    """One public KEM key of one agency."""

    agency: str
    key_id: str
    suite: str
    public: bytes = field(repr=False)

    def __post_init__(self) -> None:
        hpke_suite(self.suite)
        if len(self.public) != _PUBLIC_SIZE[self.suite]:
            raise DirectoryError(f"{self.key_id}: public key has the wrong length")
        if key_id(self.suite, self.public) != self.key_id:
            raise DirectoryError(f"{self.key_id}: key id does not match the public key")

    def wrap(self, file_key: bytes, header_hash: bytes) -> Stanza:
        enc = hpke_suite(self.suite).encrypt(
            file_key,
            _kem_public(self.suite, self.public),
            info=stanza_info(header_hash, self.agency, self.key_id),
        )
        return Stanza(recipient=self.agency, key_id=self.key_id, suite=self.suite, enc=enc)


@dataclass(eq=False, repr=False)
class KemKey:
    """A secret KEM key. `not_after` is the end of its rotation overlap (None: current)."""

    key_id: str
    suite: str
    created_at: datetime
    not_after: datetime | None
    public: bytes
    secret: bytes
    private: _HpkePrivate

    @classmethod
    def from_secret(
        cls, suite: str, secret: bytes, created_at: datetime, not_after: datetime | None = None
    ) -> KemKey:
        if len(secret) != _SECRET_SIZE.get(suite, -1):
            raise UnsupportedSuite(f"bad secret key for suite {suite!r}")
        private, public = _kem_private(suite, secret)
        return cls(key_id(suite, public), suite, created_at, not_after, public, secret, private)

    def valid_at(self, when: datetime) -> bool:
        return self.not_after is None or when < self.not_after

    def __repr__(self) -> str:
        return f"KemKey({self.key_id!r}, not_after={self.not_after!r})"


@dataclass(eq=False, repr=False)
class SigningKey:
    key_id: str
    created_at: datetime
    not_after: datetime | None
    public: bytes
    secret: bytes
    private: ed25519.Ed25519PrivateKey

    @classmethod
    def from_secret(
        cls, secret: bytes, created_at: datetime, not_after: datetime | None = None
    ) -> SigningKey:
        private = ed25519.Ed25519PrivateKey.from_private_bytes(secret)
        public = private.public_key().public_bytes_raw()
        return cls(key_id(SIGN_ALG, public), created_at, not_after, public, secret, private)

    def __repr__(self) -> str:
        return f"SigningKey({self.key_id!r}, not_after={self.not_after!r})"


class Identity:
    """One agency's secret keys: Ed25519 signing keys (the last one is current) and KEM
    keys (those with `not_after` None are current; the others open old messages until
    their overlap ends)."""

    def __init__(
        self, agency: str, signing_keys: Sequence[SigningKey], kem_keys: Sequence[KemKey]
    ) -> None:
        if not signing_keys or not kem_keys:
            raise ValueError("an identity needs a signing key and a KEM key")
        self.agency = agency
        self._signing = list(signing_keys)
        self._kem = {k.key_id: k for k in kem_keys}

    @classmethod
    def generate(
        cls,
        agency: str,
        suites: Sequence[str] = (X25519,),
        now: datetime | None = None,
        *,
        rand: Rand | None = None,
    ) -> Identity:
        """`rand` is for deterministic test fixtures only; keys come from os.urandom."""
        now, rand = _utc(now), rand or os.urandom
        if not suites:
            raise ValueError("at least one KEM suite is required")
        signing = SigningKey.from_secret(rand(_SECRET_SIZE[SIGN_ALG]), now)
        return cls(agency, [signing], [_new_kem(s, now, rand) for s in dict.fromkeys(suites)])

    # -- signing -------------------------------------------------------------------------
    @property
    def signing_key_id(self) -> str:
        return self._signing[-1].key_id

    @property
    def signing_public_bytes(self) -> bytes:
        return self._signing[-1].public

    @property
    def signing_public(self) -> ed25519.Ed25519PublicKey:
        return self._signing[-1].private.public_key()

    def sign(self, data: bytes) -> bytes:
        return self._signing[-1].private.sign(data)

    @property
    def signing_keys(self) -> list[SigningKey]:
        return list(self._signing)

    def storage_keys(self, label: bytes) -> list[bytes]:
        """32-byte keys for local encryption at rest, one per signing key held (current
        first), derived with HKDF-SHA256 under `label`. Several, so that data protected
        under a key that is being rotated out can still be opened during the overlap and
        re-protected under the current one. Never log or store the result."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return [
            HKDF(algorithm=hashes.SHA256(), length=32, salt=b"orcon/v1/storage",
                 info=label + b"\x00" + k.key_id.encode()).derive(k.secret)
            for k in reversed(self._signing)
        ]

    # -- KEM -----------------------------------------------------------------------------
    @property
    def kem_keys(self) -> list[KemKey]:
        return list(self._kem.values())

    def kem_key(self, kid: str) -> KemKey | None:
        return self._kem.get(kid)

    def recipients(self) -> list[Recipient]:
        """The current public KEM keys (every suite)."""
        return [
            Recipient(self.agency, k.key_id, k.suite, k.public)
            for k in self._kem.values()
            if k.not_after is None
        ]

    def unwrap(self, stanza: Stanza, header_hash: bytes) -> bytes:
        """The content key of a stanza addressed to one of this identity's keys. Does not
        look at key validity times: `keys.envelope.open_envelope` does, with its `now`."""
        suite = hpke_suite(stanza.suite)
        key = self._kem.get(stanza.key_id)
        if key is None or stanza.recipient != self.agency:
            raise UnknownRecipient(f"{self.agency} holds no key {stanza.key_id!r}")
        if key.suite != stanza.suite:
            raise CryptoError()
        try:
            file_key = suite.decrypt(
                stanza.enc, key.private, info=stanza_info(header_hash, self.agency, key.key_id)
            )
        except (InvalidTag, ValueError):
            raise CryptoError() from None
        if len(file_key) != FILE_KEY_SIZE:
            raise CryptoError()
        return file_key

    # -- lifecycle -----------------------------------------------------------------------
    def rotate(
        self,
        now: datetime,
        overlap: timedelta,
        suites: Sequence[str] | None = None,
        *,
        new_signing_key: bool = False,
        rand: Rand | None = None,
    ) -> None:
        """Add new current KEM keys (by default one per suite in use) and retire the
        current ones at `now + overlap`; with `new_signing_key`, the same for signing."""
        now, rand = _utc(now), rand or os.urandom
        if overlap < timedelta(0):
            raise ValueError("overlap must not be negative")
        current = [k for k in self._kem.values() if k.not_after is None]
        suites = list(dict.fromkeys(suites or [k.suite for k in current] or [X25519]))
        fresh = [_new_kem(s, now, rand) for s in suites]
        for k in current:
            k.not_after = now + overlap
        self._kem.update((k.key_id, k) for k in fresh)
        if new_signing_key:
            self._signing[-1].not_after = now + overlap
            self._signing.append(SigningKey.from_secret(rand(_SECRET_SIZE[SIGN_ALG]), now))

    def prune(self, now: datetime) -> None:
        """Forget keys whose overlap has ended (the current signing key always stays)."""
        now = _utc(now)
        self._kem = {i: k for i, k in self._kem.items() if k.valid_at(now)}
        self._signing = [
            k for k in self._signing[:-1] if k.not_after is None or now < k.not_after
        ] + self._signing[-1:]

    def directory_entry(
        self,
        *,
        country: str,
        roles: Sequence[str],
        clearance: str,
        now: datetime | None = None,
        serial: int | None = None,
    ) -> DirectoryEntry:
        """The public entry for the federation root to sign. `serial` defaults to `now`
        in milliseconds, so a later entry (after a rotation) supersedes an earlier one."""
        now = _utc(now)
        return DirectoryEntry(
            agency=self.agency,
            country=country,
            roles=list(roles),
            clearance=clearance,
            sign_keys=[
                PublicKey(
                    key_id=k.key_id,
                    alg=SIGN_ALG,
                    public=k.public,
                    not_before=k.created_at,
                    not_after=k.not_after,
                )
                for k in self._signing
            ],
            kem_keys=[
                PublicKey(
                    key_id=k.key_id,
                    alg=k.suite,
                    public=k.public,
                    not_before=k.created_at,
                    not_after=k.not_after,
                )
                for k in self._kem.values()
            ],
            issued_at=now,
            serial=serial if serial is not None else int(now.timestamp() * 1000),
        )

    def __repr__(self) -> str:
        kem = ", ".join(self._kem)
        return f"Identity(agency={self.agency!r}, signing={self.signing_key_id!r}, kem=[{kem}])"


def _new_kem(suite: str, now: datetime, rand: Rand) -> KemKey:
    hpke_suite(suite)
    return KemKey.from_secret(suite, rand(_SECRET_SIZE[suite]), now)
