"""The envelope wire format (age-like: one stanza per recipient key)."""

from __future__ import annotations

import msgspec

from schemas import limits
from schemas.duplicates import msgpack_duplicates
from schemas.errors import SchemaError
from schemas.header import Header

ENVELOPE_VERSION = 1
KEY_COMMITMENT_FIELD = "key_commitment"  # schemas.header.Header.key_commitment
KEY_COMMITMENT_SIZE = 32


class Stanza(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True, array_like=True):
    """The content key wrapped for one recipient key with HPKE."""

    recipient: str  # agency id
    key_id: str  # the recipient KEM key the content key is wrapped to
    suite: str  # e.g. "x25519" or "mlkem768x25519"
    enc: bytes  # HPKE single-shot output: encapsulated key || sealed content key


class Envelope(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True, array_like=True):
    """`header` holds the exact bytes the sender signed: signatures cover bytes, never a
    re-encoded structure, so there is no canonicalization to get wrong."""

    v: int
    header: bytes
    signature: bytes
    stanzas: list[Stanza]
    ciphertext: bytes  # nonce || AEAD(body), associated data = header hash


class _Committed(msgspec.Struct):
    """The one header field the envelope layer reads (other fields are ignored here)."""

    key_commitment: bytes | None = None


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Envelope)
_committed = msgspec.msgpack.Decoder(_Committed)
_header = msgspec.msgpack.Decoder(Header)


def read_key_commitment(header: bytes, *, unambiguous: bool = False) -> bytes:
    """The content-key commitment a sealed header carries. SchemaError when the header
    is not a map or lacks a 32-byte `key_commitment`: a sealed message without one
    could open to different plaintexts for different recipients. With `unambiguous`,
    also when any map in the header repeats a key (decode_envelope leaves that to
    `schemas.decode_header`, which every reader of a header calls next; the opening
    code, which trusts no caller to have done so, asks for it)."""
    path = f"envelope.header.{KEY_COMMITMENT_FIELD}"
    # Even a lenient read recurses into what it skips: bound the header first (a header
    # nested 1,000 deep would otherwise raise RecursionError here, before any rule).
    limits.check(header, limits.HEADER, "header")
    try:
        found = _committed.decode(header).key_commitment
    except msgspec.ValidationError as exc:  # not a map, or the field is not bytes
        raise SchemaError.single(path, "key-commitment", f"no readable commitment: {exc}"
                                 ) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise SchemaError.single("envelope.header", "msgpack",
                                 f"the header is not valid msgpack: {exc}") from None
    dups = msgpack_duplicates(header, "envelope.header", decoded=_as_header(header)
                              ) if unambiguous else []
    if dups:
        raise SchemaError(dups)
    if found is None or len(found) != KEY_COMMITMENT_SIZE:
        raise SchemaError.single(
            path, "key-commitment",
            f"a sealed header must carry a {KEY_COMMITMENT_SIZE}-byte commitment to its "
            "content key (set by keys.envelope.seal)")
    return found


def _as_header(data: bytes) -> Header | None:
    """The Header these bytes decode to, if they do: only a hint that lets the
    repeated-key scan prove the common case quickly (schemas.duplicates.reencodes_to)."""
    try:
        return _header.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None


def encode_envelope(envelope: Envelope) -> bytes:
    return _encoder.encode(envelope)


def decode_envelope(data: bytes) -> Envelope:
    try:
        env = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise SchemaError.single("envelope", "structure", str(exc)) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # msgspec reports invalid UTF-8 in a str field as UnicodeDecodeError.
        raise SchemaError.single("envelope", "msgpack", f"not a valid envelope: {exc}") from None
    if env.v != ENVELOPE_VERSION:
        raise SchemaError.single(
            "envelope.v", "version", f"envelope version {env.v} is not supported"
        )
    read_key_commitment(env.header)  # checks the header's limits before it decodes
    return env
