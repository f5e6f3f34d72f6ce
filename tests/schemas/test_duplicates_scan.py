"""The repeated-key scan skips arrays that cannot hold a map (schemas/duplicates.py):
it must still find a repeated key in a map at any depth inside arrays, and a text that
merely contains a map-header byte must not hide one."""

from __future__ import annotations

import msgspec
import pytest

from schemas.codec import _header_decoder, decode_header
from schemas.duplicates import msgpack_duplicates, reencodes_to
from schemas.errors import SchemaError
from schemas.examples import example_header, mekong_route_report


def _fixmap(*pairs: tuple[bytes, bytes]) -> bytes:
    return bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)


def _str(text: str) -> bytes:
    raw = text.encode()
    return bytes([0xA0 | len(raw)]) + raw


def test_repeated_key_in_a_map_inside_arrays_is_found() -> None:
    inner = _fixmap((_str("a"), b"\x01"), (_str("a"), b"\x02"))
    data = _fixmap((_str("xs"), b"\x92" + b"\x91\xc0" + b"\x91" + inner))
    errs = msgpack_duplicates(data, "header")
    assert [(e.path, e.rule) for e in errs] == [("header.xs[1][0]", "duplicate-key")]


def test_arrays_of_text_only_are_clean_whatever_their_bytes() -> None:
    # "é" is 0xC3 0xA9 and "\u0380"-range text carries 0x8x bytes: still no map.
    data = _fixmap((_str("xs"), b"\x93" + _str("LA-NCB") + _str("é") + _str("΀")))
    assert msgpack_duplicates(data, "header") == []


def test_repeated_key_next_to_text_with_map_header_bytes_is_found() -> None:
    inner = _fixmap((_str("k"), _str("΀")), (_str("k"), b"\xc0"))
    data = _fixmap((_str("xs"), b"\x92" + _str("΀") + inner))
    errs = msgpack_duplicates(data, "header")
    assert [(e.path, e.rule) for e in errs] == [("header.xs[1]", "duplicate-key")]


# ---- the re-encoding proof (schemas.duplicates.reencodes_to) ---------------------------
# decode_header skips the scan for bytes that are exactly the encoding of the Header they
# decode to; every other header must still be scanned.


def _header_bytes_by_another_encoder(extra: list[tuple[str, object]]) -> bytes:
    fields = msgspec.to_builtins(example_header(mekong_route_report()))
    pairs = [*fields.items(), *extra]
    # A fixmap/map16 of plain dict entries: valid msgpack, not msgspec's Struct layout.
    n = len(pairs)
    head = bytes([0x80 | n]) if n <= 15 else b"\xde" + n.to_bytes(2, "big")
    return head + b"".join(msgspec.msgpack.encode(k) + msgspec.msgpack.encode(v) for k, v in pairs)


def test_a_header_from_another_encoder_is_scanned_and_accepted() -> None:
    data = _header_bytes_by_another_encoder([])
    header = decode_header(data)
    assert not reencodes_to(data, header)  # so the full scan ran, and found nothing


def test_a_repeated_key_never_passes_as_a_reencoding() -> None:
    data = _header_bytes_by_another_encoder([("level", "UNCLASSIFIED")])
    assert not reencodes_to(data, _header_decoder.decode(data))
    with pytest.raises(SchemaError) as exc:
        decode_header(data)
    assert [(e.path, e.rule) for e in exc.value.errors] == [("header", "duplicate-key")]
