"""schemas/limits.py: limits on raw msgpack, checked before anything is decoded."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import limits
from schemas.codec import encode
from schemas.examples import example_header, mekong_route_report
from schemas.limits import HEADER, LimitExceeded, Limits


def _rule(data: bytes, lim: Limits = HEADER) -> str | None:
    try:
        limits.check(data, lim, "header")
    except LimitExceeded as exc:
        return exc.rule
    return None


def test_each_limit_names_its_rule_and_path() -> None:
    with pytest.raises(LimitExceeded) as deep:
        limits.check(b"\x81\xa6topics" + b"\x91" * 1000 + b"\xc0", HEADER, "header")
    assert deep.value.rule == "limits.depth" and deep.value.errors[0].path.startswith(
        "header.topics[]")
    with pytest.raises(LimitExceeded) as many:
        limits.check(msgspec.msgpack.encode({"recipients": ["AB"] * 1025}), HEADER, "header")
    assert many.value.rule == "limits.items"
    assert many.value.errors[0].path == "header.recipients"
    assert _rule(msgspec.msgpack.encode({"v": "A" * 8193})) == "limits.text"
    assert _rule(msgspec.msgpack.encode({"p": b"x" * (64 * 1024 + 1)})) == "limits.bin"
    assert isinstance(deep.value, msgspec.ValidationError) is False  # a SchemaError
    assert "1024" in str(many.value)


def test_at_the_limits_passes() -> None:
    assert _rule(msgspec.msgpack.encode({"recipients": ["AB"] * 1024})) is None
    assert _rule(msgspec.msgpack.encode({"v": "A" * 8192})) is None
    assert _rule(b"\x81\xa1t" + b"\x91" * 11 + b"\xc0") is None  # 12 deep in all


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\xdd\xff\xff\xff\xff", b"\xdb\x00\x01\x00\x00x",
                                  b"\x95\x01"])
def test_malformed_input_is_left_to_the_decoder(data: bytes) -> None:
    # Claims more than was sent, or is not msgpack: the decoder names what is wrong.
    assert _rule(data) is None


values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=40)
    | st.binary(max_size=40),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=6),
    max_leaves=60,
)


def _depth(v: Any) -> int:
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(values, st.integers(1, 6), st.integers(1, 8))
def test_agrees_with_a_model(v: Any, max_depth: int, max_items: int) -> None:
    """Against a direct computation on the Python value (fast path included)."""
    lim = Limits(max_depth=max_depth, max_items=max_items, max_text=30, max_bin=30)

    def over(x: Any) -> bool:
        if isinstance(x, list | dict):
            items = list(x.values()) + list(x) if isinstance(x, dict) else x
            return len(x) > max_items or any(over(i) for i in items)
        if isinstance(x, str):
            return len(x.encode()) > 30
        if isinstance(x, bytes):
            return len(x) > 30
        return False

    expected = over(v) or _depth(v) > max_depth
    assert (_rule(msgspec.msgpack.encode(v), lim) is not None) == expected


# ---- the level-by-level proof (schemas.limits._within_by_levels) -----------------------
# It may only ever say "within every limit" when that is true; anything it cannot prove
# goes to the byte walk, which names the error.


@settings(max_examples=500, deadline=None)
@given(values, st.integers(1, 6), st.integers(1, 8))
def test_the_level_proof_never_passes_what_is_above_a_limit(
    v: Any, max_depth: int, max_items: int
) -> None:
    lim = Limits(max_depth=max_depth, max_items=max_items, max_text=30, max_bin=30)
    data = msgspec.msgpack.encode(v)
    if limits._within_by_levels(data, lim):
        assert _rule(data, Limits(max_depth, max_items, 30, 30)) is None
        walked = None
        try:
            limits._walk(memoryview(data), lim, "header")
        except LimitExceeded as exc:
            walked = exc.rule
        except limits._Malformed:
            walked = "malformed"
        assert walked is None


@settings(max_examples=500, deadline=None)
@given(values, st.integers(1, 6), st.binary(min_size=8, max_size=40))
def test_the_depth_proof_of_small_data_never_passes_what_is_too_deep(
    v: Any, max_depth: int, noise: bytes
) -> None:
    """Data shorter than every count and length limit takes the depth-only proof
    (`_depth_within`); random bytes beside the value (as a sealed header's commitment)
    keep the cheaper opener count from settling it."""
    lim = Limits(max_depth=max_depth, max_items=4096, max_text=4096, max_bin=4096)
    data = msgspec.msgpack.encode({"v": v, "noise": noise, "w": [v]})
    if limits._within_by_levels(data, lim):
        assert _depth({"v": v, "w": [v]}) <= max_depth
        assert _rule(data, lim) is None


def test_a_sealed_header_is_proven_without_the_byte_walk() -> None:
    # Its random commitment holds container-opening byte values, so `_small` fails.
    data = encode(msgspec.structs.replace(example_header(mekong_route_report()),
                                          key_commitment=b"\x90\x91\xdc\xde" * 8))
    assert not limits._small(data, HEADER, 1)
    assert limits._within_by_levels(data, HEADER)
    deep = msgspec.msgpack.encode({"t": [[[[[[[[[[[[[1]]]]]]]]]]]]]})
    assert not limits._within_by_levels(deep, HEADER) and _rule(deep) == "limits.depth"
