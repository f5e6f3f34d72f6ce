"""The envelope wire format (age-like: one stanza per recipient key)."""

from __future__ import annotations

import msgspec

from schemas.errors import SchemaError

ENVELOPE_VERSION = 1


class Stanza(msgspec.Struct, forbid_unknown_fields=True, frozen=True, array_like=True):
    """The content key wrapped for one recipient key with HPKE."""

    recipient: str  # agency id
    key_id: str  # the recipient KEM key the content key is wrapped to
    suite: str  # e.g. "x25519" or "mlkem768x25519"
    enc: bytes  # HPKE single-shot output: encapsulated key || sealed content key


class Envelope(msgspec.Struct, forbid_unknown_fields=True, frozen=True, array_like=True):
    """`header` holds the exact bytes the sender signed: signatures cover bytes, never a
    re-encoded structure, so there is no canonicalization to get wrong."""

    v: int
    header: bytes
    signature: bytes
    stanzas: list[Stanza]
    ciphertext: bytes  # nonce || AEAD(body), associated data = header hash


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Envelope)


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
    return env
