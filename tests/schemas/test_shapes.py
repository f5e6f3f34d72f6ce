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
from tests.support.strategies import bodies

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


def _shaped(value: Any, info: Any, path: str) -> list[tuple[str, str]]:
    """(path, pattern) of every string in the builtins `value` whose type carries a shape."""
    if isinstance(info, mi.Metadata):
        pattern = (info.extra_json_schema or {}).get("pattern")
        if pattern in SHAPES and isinstance(value, str):
            return [(path, pattern)]
        return _shaped(value, info.type, path)
    if isinstance(info, mi.UnionType):
        structs = [t for t in info.types if isinstance(t, mi.StructType)]
        if isinstance(value, dict) and structs:
            tagged = [t for t in structs if t.tag_field and value.get(t.tag_field) == t.tag]
            return _shaped(value, (tagged or structs)[0], path)
        return [hit for t in info.types
                if not isinstance(t, mi.StructType) for hit in _shaped(value, t, path)]
    if isinstance(info, mi.ListType) and isinstance(value, list):
        return [hit for i, v in enumerate(value)
                for hit in _shaped(v, info.item_type, f"{path}[{i}]")]
    if isinstance(info, mi.StructType) and isinstance(value, dict):
        return [hit for f in info.fields if f.encode_name in value
                for hit in _shaped(value[f.encode_name], f.type, f"{path}.{f.encode_name}")]
    return []


def _replace(doc: Any, path: str, new: str) -> Any:
    steps = re.findall(r"\.(\w+)|\[(\d+)\]", path.removeprefix("body"))
    node = doc
    for key, index in steps[:-1]:
        node = node[key] if key else node[int(index)]
    key, index = steps[-1]
    if key:
        node[key] = new
    else:
        node[int(index)] = new
    return doc


def _assert_every_shape_checked(body: Any) -> None:
    doc = msgspec.to_builtins(body)
    for path, _pattern in _shaped(doc, mi.type_info(Body), "body"):
        bad = msgspec.msgpack.encode(_replace(msgspec.to_builtins(body), path, BAD))
        with pytest.raises(SchemaError) as caught:
            decode_body(bad)
        assert (path, "pattern") in {(e.path, e.rule) for e in caught.value.errors}, path
        # The structural walk (another field broken too) still reports it.
        broken = _replace(msgspec.to_builtins(body), path, BAD)
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
             for _, p in _shaped(msgspec.to_builtins(EXAMPLES[k]()), mi.type_info(Body), "body")}
    assert found == set(SHAPES)


def test_valid_examples_still_decode() -> None:
    for build in EXAMPLES.values():
        body = build()
        assert decode_body(encode(body)) == body
