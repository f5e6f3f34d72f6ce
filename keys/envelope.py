"""Seal and open envelopes (see tests/vectors/README.md for the byte-level construction).

    commitment  = SHA-256("orcon/v1/key-commitment\\0" || content_key)
    header      = the sender's header map with `key_commitment` = commitment
    header_hash = SHA-256("orcon/v1/header\\0" || header_bytes)
    ciphertext  = nonce(12) || ChaCha20-Poly1305(content_key, nonce, body, ad=header_hash)
    signature   = Ed25519(sender, "orcon/v1/signature\\0" || header_hash || SHA-256(ciphertext))
    stanza      = HPKE wrap of content_key per recipient key (keys.identity.Recipient.wrap)

The signature deliberately leaves the stanzas out: the broker drops the stanzas of
recipients the policy refuses, and each recipient gets only its own. Stanzas are bound to
the message and the recipient by the HPKE `info` instead, and the body to the header by
the AEAD's associated data.

ChaCha20-Poly1305 is not key-committing: a sender can make one ciphertext authenticate
under two keys (Poly1305 is linear in the ciphertext), wrap one key per recipient, and
so show two recipients two plaintexts behind one signature and one audit record. The
signed header therefore carries a commitment to the content key, and a recipient checks
the key it unwraps against it BEFORE decrypting (so no decryption, and no timing of
one, ever happens under an uncommitted key). The commitment is a hash of a uniformly
random 256-bit key, so it reveals nothing about the key; SHA-256's collision resistance
makes it binding.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from datetime import datetime

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from nacl.bindings import crypto_sign_open
from nacl.exceptions import CryptoError as NaclCryptoError

from keys.errors import (
    CryptoError,
    KeyExpired,
    KeysError,
    UnknownRecipient,
    UnsupportedSuite,
)
from keys.identity import FILE_KEY_SIZE, Identity, Recipient, _utc
from schemas.envelope import (
    ENVELOPE_VERSION,
    KEY_COMMITMENT_FIELD,
    KEY_COMMITMENT_SIZE,
    Envelope,
    Stanza,
    read_key_commitment,
)
from schemas.errors import SchemaError
from schemas.message import Message
from schemas.message import header_hash as header_hash  # its one home: re-exported

SIGNATURE_LABEL = b"orcon/v1/signature\x00"
COMMITMENT_LABEL = b"orcon/v1/key-commitment\x00"
NONCE_SIZE = 12

_header_map = msgspec.msgpack.Decoder(dict[str, msgspec.Raw])
_encode = msgspec.msgpack.encode


def key_commitment(content_key: bytes) -> bytes:
    """The 32-byte commitment to a content key that a sealed header carries."""
    return hashlib.sha256(COMMITMENT_LABEL + content_key).digest()


def commit_header(header_bytes: bytes, content_key: bytes) -> bytes:
    """The header map with `key_commitment` set to the commitment to `content_key`,
    as its last entry. The sender's values keep their exact bytes and the map keeps its
    length-prefix width where the count fits, so for a header encoded from
    `schemas.Header` (where the field is declared last) the result equals encoding the
    Header with the field set. A commitment already present is replaced."""
    try:
        fields = _header_map.decode(header_bytes)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise ValueError("the header must be a msgpack map (an encoded schemas.Header)") from None
    fields.pop(KEY_COMMITMENT_FIELD, None)
    pairs, first = len(fields) + 1, header_bytes[0]
    if first <= 0x8F and pairs <= 15:
        prefix = bytes([0x80 | pairs])
    elif first != 0xDF and pairs <= 0xFFFF:
        prefix = b"\xde" + pairs.to_bytes(2, "big")
    else:
        prefix = b"\xdf" + pairs.to_bytes(4, "big")
    entries = b"".join(_encode(k) + bytes(v) for k, v in fields.items())
    tail = _encode(KEY_COMMITMENT_FIELD) + _encode(key_commitment(content_key))
    return prefix + entries + tail


def _commitment(header_bytes: bytes) -> bytes:
    try:
        return read_key_commitment(header_bytes, unambiguous=True)
    except SchemaError:
        raise CryptoError() from None


def _committed(content_key: bytes, commitment: bytes) -> bool:
    return hmac.compare_digest(key_commitment(content_key), commitment)


def signed_message(hh: bytes, ciphertext: bytes) -> bytes:
    """The bytes the sender signs: fixed-length fields after the label, so unambiguous."""
    return SIGNATURE_LABEL + hh + hashlib.sha256(ciphertext).digest()


def seal(
    header_bytes: bytes,
    body_bytes: bytes,
    recipients: Sequence[Recipient],
    signer: Identity,
    *,
    rand: Callable[[int], bytes] = os.urandom,
) -> Envelope:
    """Encrypt the body to every recipient key and sign. `header_bytes` is the sender's
    header map without the commitment: seal draws the content key and adds it
    (`commit_header`), so the envelope's `header` is what is signed, not `header_bytes`.
    `rand` supplies the content key (32 bytes, drawn first) and the nonce (12 bytes,
    drawn second)."""
    if not recipients:
        raise UnknownRecipient("no recipients to seal to")
    content_key, nonce = rand(FILE_KEY_SIZE), rand(NONCE_SIZE)
    if len(content_key) != FILE_KEY_SIZE or len(nonce) != NONCE_SIZE:
        raise ValueError("rand returned the wrong number of bytes")
    header_bytes = commit_header(header_bytes, content_key)
    hh = header_hash(header_bytes)
    ciphertext = nonce + ChaCha20Poly1305(content_key).encrypt(nonce, body_bytes, hh)
    return Envelope(
        v=ENVELOPE_VERSION,
        header=header_bytes,
        signature=signer.sign(signed_message(hh, ciphertext)),
        stanzas=[r.wrap(content_key, hh) for r in recipients],
        ciphertext=ciphertext,
    )


def verify_ed25519(public: Ed25519PublicKey, signature: bytes, message: bytes) -> None:
    """Ed25519 verification through libsodium (PyNaCl): about half the time of the
    OpenSSL path on the broker's hot loop (docs/bench.md, "Profile"). libsodium is at
    least as strict (it also refuses small-order keys and non-canonical encodings); a
    failure of any kind is the one opaque CryptoError."""
    if len(signature) != 64:
        raise CryptoError()
    try:
        crypto_sign_open(signature + message, public.public_bytes_raw())
    except (NaclCryptoError, ValueError, TypeError):
        raise CryptoError() from None


def _hash_of(header_bytes: bytes, hh: bytes | None) -> bytes:
    """`hh` when the caller already holds the header's hash (a parsed message carries
    it), else computed here: each header is hashed once per open or verify."""
    if hh is None:
        return header_hash(header_bytes)
    if len(hh) != 32:
        raise ValueError("a header hash is 32 bytes (keys.envelope.header_hash)")
    return hh


def verify(envelope: Envelope, signer_public: Ed25519PublicKey, *,
           hh: bytes | None = None) -> None:
    """Check the sender's signature over header and ciphertext (not the stanzas).
    `hh`: the header's hash (`header_hash(envelope.header)`) if already computed."""
    if envelope.v != ENVELOPE_VERSION:
        raise UnsupportedSuite(f"envelope version {envelope.v} is not supported")
    verify_ed25519(signer_public, envelope.signature,
                   signed_message(_hash_of(envelope.header, hh), envelope.ciphertext))


def _bound(envelope: Envelope | Message, hh: bytes | None) -> tuple[Envelope, bytes, bytes]:
    """The envelope, its header's hash and the header's commitment to the content key.
    A parsed `Message` holds both already (`parse_message` proved the commitment present,
    32 bytes and not repeated): the header is neither decoded nor hashed again. A bare
    envelope's header is read here, refusing a repeated key: this code trusts no caller
    to have decoded it."""
    if isinstance(envelope, Message):
        if hh is not None and hh != envelope.header_hash:
            raise ValueError("hh must be the parsed message's header hash")
        commitment = envelope.header.key_commitment
        if commitment is None or len(commitment) != KEY_COMMITMENT_SIZE:
            raise CryptoError()
        return envelope.envelope, envelope.header_hash, commitment
    return envelope, _hash_of(envelope.header, hh), _commitment(envelope.header)


def _content_key(envelope: Envelope, identity: Identity, hh: bytes, commitment: bytes,
                 now: datetime) -> bytes:
    """The content key from the first stanza addressed to one of `identity`'s keys valid
    at `now` that unwraps to the key the signed header commits to. UnknownRecipient: no
    stanza for a key `identity` holds; KeyExpired: only stanzas for keys whose overlap
    has ended; CryptoError: none opened to the committed key."""
    held = valid = 0
    for stanza in envelope.stanzas:  # one pass: usually a single stanza
        if stanza.recipient != identity.agency:
            continue
        key = identity.kem_key(stanza.key_id)
        if key is None:
            continue
        held += 1
        if not key.valid_at(now):
            continue
        valid += 1
        try:
            content_key = identity.unwrap(stanza, hh)
        except CryptoError:
            continue  # another stanza for another of our keys may still open
        if _committed(content_key, commitment):
            return content_key
        # never decrypt under a key the signed header does not commit to
    if not held:
        raise UnknownRecipient(f"no stanza for a key that {identity.agency} holds")
    if not valid:
        raise KeyExpired("the stanzas are for keys whose rotation overlap has ended")
    raise CryptoError()


def open_envelope(
    envelope: Envelope | Message,
    identity: Identity,
    signer_public: Ed25519PublicKey,
    *,
    now: datetime | None = None,
    hh: bytes | None = None,
) -> bytes:
    """Verify, unwrap the stanza addressed to one of `identity`'s keys valid at `now`,
    check the key against the header's commitment, and decrypt the body. Pass the parsed
    `Message` when there is one (its header's hash and commitment are used as they
    are). `hh`: for a bare envelope, the header's hash if the caller already holds it (it
    must be `header_hash(header)`: a wrong one fails verification)."""
    env, hh, commitment = _bound(envelope, hh)
    verify(env, signer_public, hh=hh)
    content_key = _content_key(env, identity, hh, commitment, _utc(now))
    return _decrypt_body(content_key, env.ciphertext, hh)


def _decrypt_body(content_key: bytes, ciphertext: bytes, hh: bytes) -> bytes:
    if len(ciphertext) < NONCE_SIZE + 16:
        raise CryptoError()
    try:
        return ChaCha20Poly1305(content_key).decrypt(
            ciphertext[:NONCE_SIZE], ciphertext[NONCE_SIZE:], hh
        )
    except InvalidTag:
        raise CryptoError() from None


def for_recipient(envelope: Envelope, agency: str) -> Envelope:
    """The envelope as delivered to one agency: only its own stanzas."""
    return msgspec.structs.replace(
        envelope, stanzas=[s for s in envelope.stanzas if s.recipient == agency]
    )


def by_recipient(envelope: Envelope) -> dict[str, Envelope]:
    """`for_recipient` for every agency the envelope has stanzas for, in one pass over
    the stanzas (a fan-out to n agencies would otherwise scan them n times)."""
    stanzas: dict[str, list[Stanza]] = {}
    for st in envelope.stanzas:
        stanzas.setdefault(st.recipient, []).append(st)
    return {agency: msgspec.structs.replace(envelope, stanzas=own)
            for agency, own in stanzas.items()}


# ---- life-cycle additions (forward, proofs) ------------------------------------------


def verify_signed_header(
    header_bytes: bytes, signature: bytes, body_digest: bytes, signer_public: Ed25519PublicKey,
    *, hh: bytes | None = None,
) -> None:
    """Check a signature without the body: the sender signed the header hash and the
    SHA-256 of the ciphertext, so the digest stands in for the ciphertext. Lets a broker
    or auditor verify a proof (`schemas.acts.SignedHeader`) it holds no body for. `hh`:
    the header's hash if already computed."""
    if len(body_digest) != 32:
        raise CryptoError()
    verify_ed25519(signer_public, signature,
                   SIGNATURE_LABEL + _hash_of(header_bytes, hh) + body_digest)


def body_digest(envelope: Envelope) -> bytes:
    """The SHA-256 of the ciphertext, as covered by the signature."""
    return hashlib.sha256(envelope.ciphertext).digest()


def unwrap_content_key(
    envelope: Envelope | Message,
    identity: Identity,
    signer_public: Ed25519PublicKey,
    *,
    now: datetime | None = None,
    hh: bytes | None = None,
) -> bytes:
    """The content key of an envelope addressed to `identity`, after verifying the
    sender's signature, the header's commitment to it, and that it opens the body. For
    forwarding: the holder re-wraps this key to a third party instead of re-encrypting,
    so the originator's signature over the ciphertext stays valid. Never log or store
    the result. A parsed `Message`, or `hh` as for `open_envelope`. UnknownRecipient
    when no stanza opens (the signature's failure stays a CryptoError)."""
    env, hh, commitment = _bound(envelope, hh)
    verify(env, signer_public, hh=hh)
    try:
        content_key = _content_key(env, identity, hh, commitment, _utc(now))
        _decrypt_body(content_key, env.ciphertext, hh)
    except (CryptoError, KeysError):
        # Nothing this identity could forward: the same answer whichever check failed.
        raise UnknownRecipient(f"no stanza that {identity.agency} can open") from None
    return content_key


def add_stanzas(
    envelope: Envelope, content_key: bytes, recipients: Sequence[Recipient], *,
    hh: bytes | None = None,
) -> Envelope:
    """The same envelope (header, signature, ciphertext unchanged) with the content key
    also wrapped to `recipients`. The HPKE info binds each stanza to this header and
    that recipient, so the stanza cannot be reused for another message or agency. A key
    the header does not commit to is refused: it would only hand the third party a
    stanza it must reject."""
    if not _committed(content_key, _commitment(envelope.header)):
        raise CryptoError()
    hh = _hash_of(envelope.header, hh)
    return msgspec.structs.replace(
        envelope, stanzas=[*envelope.stanzas, *(r.wrap(content_key, hh) for r in recipients)]
    )
