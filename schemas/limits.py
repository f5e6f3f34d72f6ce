"""Limits checked on raw msgpack BEFORE anything is decoded.

A decoder builds objects as it reads: a header nested 1,000 deep, 120,000 recipients or
a 900 KiB string cost memory, recursion and time before any rule can refuse them, and
every later step (validation, policy, audit) multiplies that cost. `check` walks the
bytes once, iteratively, without building anything, and refuses the first thing above a
limit with a typed error naming where it is and the limit. What it cannot parse it
leaves to the decoder, so malformed input keeps getting the decoder's own error.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from schemas.duplicates import CONTAINER_HEADERS, MAP_HEADERS, RAW_ARRAY, RAW_MAP
from schemas.errors import FieldError, SchemaError


@dataclass(frozen=True)
class Limits:
    max_depth: int  # nested arrays/maps
    max_items: int  # elements of one array, entries of one map
    max_text: int  # bytes of one str
    max_bin: int  # bytes of one bin


# A signed header is a few hundred bytes nested at most 5 deep; named recipients are
# bounded by the size of a federation (the largest fan-out measured: 195). Condition
# texts are at most 2,000 characters; a proof (schemas.acts.SignedHeader) at most 32 KiB.
HEADER = Limits(max_depth=12, max_items=1024, max_text=8192, max_bin=64 * 1024)
# An envelope ([v, header, signature, [stanza, ...], ciphertext]) is decoded by msgspec
# into fixed types, which stops at the first mismatch without recursing, so its size
# bounds it; only its stanza count is checked (one or two keys per named recipient).
MAX_STANZAS = 2 * HEADER.max_items


class LimitExceeded(SchemaError):
    """Above a limit; `rule` is `limits.depth`, `limits.items`, `limits.text` or
    `limits.bin`."""

    @property
    def rule(self) -> str:
        return self.errors[0].rule


_FIXED = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,
          0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}
_LEN = {0xC4: (1, "bin"), 0xC5: (2, "bin"), 0xC6: (4, "bin"),
        0xD9: (1, "str"), 0xDA: (2, "str"), 0xDB: (4, "str"),
        0xC7: (1, "ext"), 0xC8: (2, "ext"), 0xC9: (4, "ext")}
_CONTAINER = {0xDC: (2, False), 0xDD: (4, False), 0xDE: (2, True), 0xDF: (4, True)}
_UNPACK = {1: struct.Struct(">B"), 2: struct.Struct(">H"), 4: struct.Struct(">I")}




# The last bytes proven within limits: a signed header is checked when its envelope is
# decoded and again when the header is, and the second time costs an identity test.
_last_within: tuple[bytes | None, Limits | None] = (None, None)


class _Malformed(Exception):
    pass


# Every byte value that does not open an array or a map, deleted by translate().
_NOT_OPENERS = bytes(b for b in range(256) if b not in CONTAINER_HEADERS)


def check(data: bytes, limits: Limits, root: str) -> None:
    """Raise LimitExceeded if the first msgpack object of `data` goes above `limits`.
    Malformed or truncated input passes: the decoder will name what is wrong with it."""
    # Fast path for the common small header: with fewer bytes than any count or length
    # limit and fewer container-opening byte values than the depth limit, no limit can
    # be reached, so there is nothing to walk.
    global _last_within
    if data is _last_within[0] and limits is _last_within[1]:
        return  # these very bytes passed a moment ago (decode_envelope, then decode_header)
    if _small(data, limits, 1) or _within_by_levels(data, limits):
        if type(data) is bytes:  # immutable: the same object is the same content
            _last_within = (data, limits)
        return
    try:
        _walk(memoryview(data), limits, root)
    except _Malformed:
        return


def _small(data: bytes | memoryview, limits: Limits, depth: int) -> bool:
    """Fewer bytes than any count or length limit, and fewer container-opening byte
    values (wherever they sit, payloads included) than the depth left: nothing inside
    can reach a limit."""
    return (len(data) <= min(limits.max_items, limits.max_text, limits.max_bin)
            and len(bytes(data).translate(None, _NOT_OPENERS)) <= limits.max_depth - depth + 1)


_SCALAR_KEYS = (str, int, float, bool, bytes, type(None))
_SCALAR_KEY_TYPES = frozenset(_SCALAR_KEYS)  # exact: msgspec decodes keys to these types


def _within_by_levels(data: bytes, limits: Limits) -> bool:
    """True only when every limit provably holds, checked one container level at a time
    by msgspec (C) instead of a byte walk in Python: a signed header's random
    commitment and proofs hold byte values that defeat `_small`, and the byte walk
    cost ~30 µs. False means "not proven" (above a limit, malformed, a repeated key
    hiding a value, a key that is a container, anything unexpected): the byte walk then
    decides and names the error exactly as before."""
    if not data or data[0] not in CONTAINER_HEADERS:
        return False  # a lone scalar: the walk settles it in one step
    small = min(limits.max_text, limits.max_bin)
    if len(data) <= min(limits.max_items, small):
        return _depth_within(data, limits.max_depth)
    todo = [(memoryview(data), 1)]
    try:
        while todo:
            view, depth = todo.pop()
            first = view[0]
            is_map = first in MAP_HEADERS
            count = _count(view)
            if depth > limits.max_depth or count > limits.max_items:
                return False
            if _small(view, limits, depth):
                continue
            if is_map:
                pairs = RAW_MAP.decode(view)
                if len(pairs) != count:  # a repeated key: a dropped value was not seen
                    return False
                for k in pairs:
                    if not isinstance(k, _SCALAR_KEYS) or (
                        isinstance(k, str | bytes) and len(k) > small // 4
                        and not _scalar_ok(msgspec.msgpack.encode(k), limits)):
                        return False
                values = list(pairs.values())
            else:
                values = RAW_ARRAY.decode(view)
            for raw in values:
                item = memoryview(raw)
                if item[0] in CONTAINER_HEADERS:
                    todo.append((item, depth + 1))
                elif len(item) > small and not _scalar_ok(item, limits):
                    return False
    except Exception:
        return False
    return True


def _depth_within(data: bytes, max_depth: int) -> bool:
    """`_within_by_levels` for data no longer than any count or length limit, where only
    the depth can be above its limit (a count or length longer than the data is
    truncated input, which the walk leaves to the decoder). A container is proven by
    counting its opening byte values (as `_small`); only one holding more (a signed
    header's random commitment and timestamp) is opened, one level, by msgspec, and
    only its containers looked at: about half the cost of the general loop on a sealed
    header. False means "not proven", as there."""
    todo: list[tuple[bytes | msgspec.Raw, int]] = [(data, 1)]
    try:
        while todo:
            raw, depth = todo.pop()
            if depth > max_depth:
                return False
            if len(bytes(raw).translate(None, _NOT_OPENERS)) <= max_depth - depth + 1:
                continue
            view = memoryview(raw)
            values: Iterable[msgspec.Raw]
            if view[0] in MAP_HEADERS:
                pairs = RAW_MAP.decode(view)
                if len(pairs) != _count(view) or not _SCALAR_KEY_TYPES.issuperset(
                        map(type, pairs)):  # a repeated key, or a key that is not a scalar
                    return False
                values = pairs.values()
            else:
                values = RAW_ARRAY.decode(view)
            todo.extend((v, depth + 1) for v in values if memoryview(v)[0] in CONTAINER_HEADERS)
    except Exception:
        return False
    return True


def _count(view: memoryview) -> int:
    first = view[0]
    if first <= 0x9F:
        return int(first & 0x0F)
    width = 2 if first in (0xDC, 0xDE) else 4
    return int.from_bytes(view[1:1 + width], "big")


def _scalar_ok(item: bytes | memoryview, limits: Limits) -> bool:
    first = item[0]
    if first in _LEN:
        width, what = _LEN[first]
        size = int.from_bytes(item[1:1 + width], "big")
        if what == "str":
            return size <= limits.max_text
        if what == "bin":
            return size <= limits.max_bin
        return True  # ext: no limit of its own
    if 0xA0 <= first <= 0xBF:
        return (first & 0x1F) <= limits.max_text
    return True


def _walk(buf: memoryview, limits: Limits, root: str) -> None:
    n = len(buf)
    pos = 0
    # One frame per open container: [values left (keys count for maps), is map, label].
    stack: list[list[object]] = []

    def path() -> str:
        return root + "".join(f".{f[2]}" if f[1] else "[]" for f in stack)

    def read_len(size: int) -> int:
        nonlocal pos
        if pos + size > n:
            raise _Malformed
        (value,) = _UNPACK[size].unpack_from(buf, pos)
        pos += size
        return int(value)

    while True:
        if pos >= n:
            raise _Malformed
        b = buf[pos]
        pos += 1
        count = -1
        is_map = False
        text = b""
        if b <= 0x7F or b >= 0xE0:
            pass
        elif 0x80 <= b <= 0x8F:
            count, is_map = b & 0x0F, True
        elif 0x90 <= b <= 0x9F:
            count = b & 0x0F
        elif 0xA0 <= b <= 0xBF:
            size = b & 0x1F
            if pos + size > n:
                raise _Malformed
            if size > limits.max_text:
                _exceeded(path(), "limits.text",
                          f"a text of {size} bytes, above the limit of {limits.max_text}")
            text = bytes(buf[pos:pos + size])
            pos += size
        elif b in _FIXED:
            pos += _FIXED[b]
        elif b in _LEN:
            width, what = _LEN[b]
            size = read_len(width) + (1 if what == "ext" else 0)
            if pos + size > n:
                raise _Malformed  # claims more than was sent
            if what == "str" and size > limits.max_text:
                _exceeded(path(), "limits.text",
                          f"a text of {size} bytes, above the limit of {limits.max_text}")
            if what == "bin" and size > limits.max_bin:
                _exceeded(path(), "limits.bin",
                          f"{size} bytes of binary, above the limit of {limits.max_bin}")
            if what == "str" and size <= 64:
                text = bytes(buf[pos:pos + size])
            pos += size
        elif b in _CONTAINER:
            width, is_map = _CONTAINER[b]
            count = read_len(width)
        else:  # 0xC1: never used
            raise _Malformed
        if pos > n:
            raise _Malformed

        frame = stack[-1] if stack else None
        if frame is not None and frame[1] and int(frame[0]) % 2 == 0:  # type: ignore[call-overload]
            frame[2] = _label(text) if count < 0 else "?"  # a map key names the path
        if count >= 0:
            # Each item takes at least one byte: a larger claim is truncated input.
            if count * (2 if is_map else 1) > n - pos:
                raise _Malformed
            if count > limits.max_items:
                _exceeded(path(), "limits.items",
                          f"{count} items, above the limit of {limits.max_items}")
            if len(stack) + 1 > limits.max_depth:
                _exceeded(path(), "limits.depth",
                          f"nested deeper than the limit of {limits.max_depth}")
            if count > 0:
                stack.append([2 * count if is_map else count, is_map, "?" if is_map else ""])
                continue
        # A complete value: close every container it completes.
        while stack:
            top = stack[-1]
            left = int(top[0]) - 1  # type: ignore[call-overload]
            if left > 0:
                top[0] = left
                break
            stack.pop()
        if not stack:
            return


def _label(text: bytes) -> str:
    try:
        s = text.decode()
    except UnicodeDecodeError:
        return "?"
    return s if s.isidentifier() else "?"


def _exceeded(path: str, rule: str, message: str) -> None:
    raise LimitExceeded([FieldError(path, rule, message)])
