"""The repeated-key scan skips arrays that cannot hold a map (schemas/duplicates.py):
it must still find a repeated key in a map at any depth inside arrays, and a text that
merely contains a map-header byte must not hide one."""

from __future__ import annotations

from schemas.duplicates import msgpack_duplicates


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
