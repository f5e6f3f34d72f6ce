"""`schemas.message.parse_message`: one message from an envelope's bytes, with the
errors (paths and rules) `decode_envelope` and `decode_header` give, in their order."""

from __future__ import annotations

import msgspec
import pytest

import schemas
from keys.envelope import header_hash, seal
from keys.identity import Identity
from schemas import examples
from schemas.message import Message, parse_message


def _sealed(header_bytes: bytes) -> bytes:
    ident = Identity.generate("TH-AHTD")
    body = schemas.encode(examples.mekong_route_report())
    return schemas.encode_envelope(seal(header_bytes, body, ident.recipients(), ident))


def _errors(data: bytes) -> list[tuple[str, str]]:
    with pytest.raises(schemas.SchemaError) as exc:
        parse_message(data)
    return [(e.path, e.rule) for e in exc.value.errors]


def test_a_message_is_its_envelope_header_bytes_and_hash() -> None:
    header = examples.example_header(examples.mekong_route_report())
    data = _sealed(schemas.encode(header))
    msg = parse_message(data)
    env = schemas.decode_envelope(data)
    assert isinstance(msg, Message) and msg.data == data and msg.envelope == env
    assert msg.header == schemas.decode_header(env.header)
    assert msg.header_bytes == env.header and msg.id == header.id
    assert msg.header_hash == header_hash(env.header)
    with pytest.raises(AttributeError):
        msg.header = header  # type: ignore[misc]  # frozen


def test_errors_are_the_decoders_own() -> None:
    assert _errors(b"\xc1 not msgpack") == [("envelope", "msgpack")]
    header = examples.example_header(examples.mekong_route_report())
    env = schemas.decode_envelope(_sealed(schemas.encode(header)))
    # No commitment to the content key: named before the header is judged.
    bare = msgspec.structs.replace(env, header=schemas.encode(header))
    assert _errors(schemas.encode_envelope(bare)) == [
        ("envelope.header.key_commitment", "key-commitment")]
    # A header rule broken under a valid commitment: the header's own path and rule.
    bad = msgspec.structs.replace(header, recipients=["KH-AHTJP", "KH-AHTJP"])
    data = _sealed(schemas.encode(bad))
    with pytest.raises(schemas.SchemaError) as direct:
        schemas.decode_header(schemas.decode_envelope(data).header)
    assert _errors(data) == [(e.path, e.rule) for e in direct.value.errors]
    assert _errors(data) == [("header.recipients", "sorted-unique")]
