"""Duplicate map keys in signed bytes.

msgpack and JSON both allow a map to repeat a key, and msgspec (like most decoders)
keeps the last value. In signed bytes that is an ambiguity another implementation may
resolve the other way (first wins), so two readers of one signature would see two
headers. Signed documents are therefore refused when any map repeats a key.

msgspec has no hook for key pairs, so each map is decoded twice: as the number of pairs
its msgpack header announces, and as a dict of raw values. Fewer dict entries than pairs
means a repeated key. Values are msgspec.Raw slices, walked only where they are maps or
arrays; the walk is iterative, so nesting cannot exhaust the Python stack.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from schemas.errors import FieldError

# One level of a map or an array, its values left undecoded (also schemas.limits').
RAW_MAP = msgspec.msgpack.Decoder(dict[Any, msgspec.Raw])
RAW_ARRAY = msgspec.msgpack.Decoder(list[msgspec.Raw])
_encoder = msgspec.msgpack.Encoder()
_json_encoder = msgspec.json.Encoder()


# The byte values that open a msgpack map, and a map or an array (also schemas.limits').
MAP_HEADERS = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])
CONTAINER_HEADERS = MAP_HEADERS | frozenset([*range(0x90, 0xA0), 0xDC, 0xDD])
# Every byte value that is not a map header, deleted by translate(): an array whose
# bytes keep none of the others holds no map, so no repeated key, and is not walked (a
# list of recipients or of country codes). Text may contain such bytes too, which
# only costs a walk, never skips a map.
_NOT_MAP_HEADERS = bytes(b for b in range(256) if b not in MAP_HEADERS)


def _may_hold_map(view: memoryview) -> bool:
    return view[0] in MAP_HEADERS or bool(bytes(view).translate(None, _NOT_MAP_HEADERS))


def _map_len(data: bytes | memoryview) -> int:
    """Pair count from a msgpack map header (`data` starts with one)."""
    first = data[0]
    if first <= 0x8F:
        return first & 0x0F
    if first == 0xDE:
        return int.from_bytes(data[1:3], "big")
    return int.from_bytes(data[1:5], "big")


def reencodes_to(data: bytes, decoded: msgspec.Struct, *, json: bool = False) -> bool:
    """Whether `data` is exactly the encoding of the Struct it decoded to. Such bytes
    repeat no key: they parse token by token like the re-encoding, which writes each
    field of each Struct once, so every map of `data` has as many distinct keys as
    pairs. Bytes from orcon's own encoder pass this in about a microsecond; anything
    else (another encoder's choices, or a repeated key) gets the full scan."""
    return (_json_encoder if json else _encoder).encode(decoded) == data


def msgpack_duplicates(
    data: bytes, root: str, *, decoded: msgspec.Struct | None = None
) -> list[FieldError]:
    """A `duplicate-key` error for every map in `data` that repeats a key. `data` must
    already have decoded once (callers check structure first); bytes that do not decode
    here are reported as a `msgpack` error rather than ignored. Scalars are never
    copied or decoded twice: only maps and arrays are walked. `decoded`: the Struct
    `data` decoded to, if the caller has it (see `reencodes_to`)."""
    if decoded is not None and reencodes_to(data, decoded):
        return []
    errors: list[FieldError] = []
    # (path parts, raw bytes of a map or array); paths are joined only for an error.
    todo: list[tuple[tuple[str, ...], memoryview]] = []
    whole = memoryview(data)
    if whole and whole[0] in CONTAINER_HEADERS:
        todo.append(((root,), whole))
    try:
        while todo:
            path, raw = todo.pop()
            if raw[0] in MAP_HEADERS:
                pairs = RAW_MAP.decode(raw)
                if len(pairs) != _map_len(raw):
                    errors.append(_error("".join(path), _repeated_keys(bytes(raw))))
                for k, v in pairs.items():
                    view = memoryview(v)
                    if view and view[0] in CONTAINER_HEADERS and _may_hold_map(view):
                        todo.append(((*path, f".{k}"), view))
            else:
                for i, v in enumerate(RAW_ARRAY.decode(raw)):
                    view = memoryview(v)
                    if view and view[0] in CONTAINER_HEADERS and _may_hold_map(view):
                        todo.append(((*path, f"[{i}]"), view))
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return [FieldError(root, "msgpack", f"not valid msgpack: {exc}")]
    return errors


def _repeated_keys(raw: bytes) -> list[str]:
    """Which keys of one map repeat (only on the refusal path, for the message): the map
    re-read as an array of alternating keys and values, by rewriting its header."""
    pairs = _map_len(raw)
    start = 1 if raw[0] <= 0x8F else (3 if raw[0] == 0xDE else 5)
    items = RAW_ARRAY.decode(b"\xdd" + (2 * pairs).to_bytes(4, "big") + raw[start:])
    seen: dict[Any, int] = {}
    for k in (msgspec.msgpack.decode(items[i]) for i in range(0, len(items), 2)):
        seen[k] = seen.get(k, 0) + 1
    return sorted(str(k) for k, n in seen.items() if n > 1)


def _error(path: str, keys: list[str]) -> FieldError:
    shown = ", ".join(f"`{k}`" for k in keys)
    return FieldError(path, "duplicate-key",
                      f"key {shown} appears more than once; signed maps must not repeat a key")


def json_duplicates(
    data: bytes, root: str, *, decoded: msgspec.Struct | None = None
) -> list[FieldError]:
    """The same rule for a JSON document (paths are not tracked below the root)."""
    if decoded is not None and reencodes_to(data, decoded, json=True):
        return []
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        repeated.extend(sorted({k for k in keys if keys.count(k) > 1}))
        return dict(items)

    try:
        json.loads(data, object_pairs_hook=pairs)
    except (ValueError, RecursionError) as exc:
        return [FieldError(root, "json", f"not valid JSON: {exc}")]
    return [_error(root, sorted(set(repeated)))] if repeated else []
