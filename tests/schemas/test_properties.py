"""Property tests: round trips are identities; nothing but SchemaError ever escapes."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas.bodies import Body
from schemas.codec import decode_body, decode_header, encode, validate_json
from schemas.envelope import decode_envelope
from schemas.errors import SchemaError
from schemas.examples import EXAMPLES
from schemas.header import Header
from schemas.validate import check_body, check_header
from tests.support.strategies import bodies, headers, json_values

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(bodies())
def test_msgpack_and_json_round_trips_are_identities(body: Any) -> None:
    assert msgspec.msgpack.decode(encode(body), type=Body) == body
    assert msgspec.json.decode(msgspec.json.encode(body), type=Body) == body


@FAST
@given(headers())
def test_header_round_trip(header: Header) -> None:
    assert msgspec.msgpack.decode(encode(header), type=Header) == header
    assert msgspec.json.decode(msgspec.json.encode(header), type=Header) == header


@FAST
@given(bodies(), headers())
def test_semantic_rules_never_crash(body: Any, header: Header) -> None:
    check_body(body, header)
    check_header(header)
    for decode in (
        lambda: decode_body(encode(body), header),
        lambda: decode_header(encode(header)),
    ):
        with contextlib.suppress(SchemaError):
            decode()


def _paths(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*path, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(sorted(EXAMPLES)))
    doc = msgspec.json.decode(msgspec.json.encode(EXAMPLES[kind]()))
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(_paths(doc)))
        if not target:
            continue
        parent = doc
        for key in target[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["delete", "replace", "unknown"]))
        last = target[-1]
        if action == "delete":
            del parent[last]
        elif action == "replace":
            parent[last] = draw(json_values())
        elif isinstance(parent[last], dict):
            parent[last][draw(st.text(min_size=1, max_size=6))] = draw(json_values())
    return msgspec.json.encode(doc)


@settings(max_examples=150, deadline=None)
@given(mutated())
def test_mutated_documents_give_schema_errors_only(data: bytes) -> None:
    errors = validate_json(data)  # never raises
    assert all(e.path.startswith(("body", "header", "$")) for e in errors)
    raw = msgspec.json.decode(data)
    try:
        decode_body(msgspec.msgpack.encode(raw))
    except SchemaError as exc:
        assert exc.errors
    else:
        assert errors == []


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
@example(b"\x81\xa1v\xa2\x00\x80")  # invalid UTF-8 in a str: msgspec raises UnicodeDecodeError
@example(b"\xa4\x00\x00\x00\x80")
def test_random_bytes_give_schema_errors_only(data: bytes) -> None:
    for decode in (decode_body, decode_header, decode_envelope):
        try:
            decode(data)
        except SchemaError as exc:  # anything else propagates and fails the test
            assert exc.errors and all(e.path and e.rule for e in exc.errors)
