"""The short codes the body rules check with a charset test instead of msgspec's regex
(`schemas.code_rules.SHAPES`): each test is exactly its pattern, and every field that
carries one is checked in every body kind, on the decode path and on the structural
(all-errors) path alike."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.bodies import Body
from schemas.code_rules import SHAPES
from schemas.codec import decode_body, encode, validate_json
from schemas.errors import SchemaError
from schemas.examples import EXAMPLES
from tests.support.strategies import bodies, patterned, replace_at

BAD = "not a code!"  # refused by every shape: a space and a "!"


def _regex(pattern: str) -> re.Pattern[str]:
    # The JSON Schema writes ECMA-262 `$`; Python's `$` would also match before "\n".
    return re.compile(pattern[:-1] + r"\Z")


@pytest.mark.parametrize("pattern", sorted(SHAPES))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_each_shape_is_exactly_its_pattern(pattern: str, data: st.DataObject) -> None:
    good = st.from_regex(pattern, fullmatch=True)
    value = data.draw(st.one_of(
        good,
        good.map(lambda s: s + "\n"),
        good.map(lambda s: s * 3),
        st.text(max_size=40),
        st.text(alphabet="AZaz09+-_ <\n\u0660\u00b2\u212a", max_size=40),
    ))
    assert SHAPES[pattern](value) == bool(_regex(pattern).search(value)), repr(value)


def test_the_shapes_are_the_body_codes_msgspec_no_longer_checks() -> None:
    assert "^[A-Za-z0-9_-]{1,32}$" in SHAPES  # refs
    assert all(not SHAPES[p](BAD) for p in SHAPES)


def _assert_every_shape_checked(body: Any) -> None:
    doc = msgspec.to_builtins(body)
    for path, _pattern in patterned(doc, mi.type_info(Body), "body", SHAPES):
        bad = msgspec.msgpack.encode(replace_at(msgspec.to_builtins(body), path, BAD))
        with pytest.raises(SchemaError) as caught:
            decode_body(bad)
        assert (path, "pattern") in {(e.path, e.rule) for e in caught.value.errors}, path
        # The structural walk (another field broken too) still reports it.
        broken = replace_at(msgspec.to_builtins(body), path, BAD)
        broken["not_a_field"] = 1
        found = validate_json(msgspec.json.encode(broken))
        assert (path, "pattern") in {(e.path, e.rule) for e in found}, path


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_every_shaped_field_of_each_example_is_checked(kind: str) -> None:
    _assert_every_shape_checked(EXAMPLES[kind]())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_every_shaped_field_anywhere_is_checked(body: Any) -> None:
    _assert_every_shape_checked(body)


def test_examples_carry_shaped_fields() -> None:
    # The example-based test above must have something to mutate.
    found = {p for k in EXAMPLES
             for _, p in patterned(msgspec.to_builtins(EXAMPLES[k]()), mi.type_info(Body),
                                   "body", SHAPES)}
    assert found == set(SHAPES)


def test_valid_examples_still_decode() -> None:
    for build in EXAMPLES.values():
        body = build()
        assert decode_body(encode(body)) == body
