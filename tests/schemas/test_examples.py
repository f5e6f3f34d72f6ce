"""Every kind has a realistic example that validates and survives both encodings; the
seed fixtures on disk are exactly what the builders produce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import msgspec
import pytest

import schemas
from schemas.bodies import BODY_TYPES, Body, body_kind
from schemas.codec import decode_body, decode_body_json, decode_header, encode, encode_json
from schemas.codes import Kind, KindName
from schemas.examples import EXAMPLES, SCENARIOS, example_header, mekong_route_report

FIXTURES = Path(__file__).parent / "fixtures"


def test_kind_enum_literal_and_body_tags_agree() -> None:
    tags = {t.__struct_config__.tag for t in BODY_TYPES}
    assert tags == {k.value for k in Kind} == set(get_args(KindName)) == set(EXAMPLES)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_example_is_valid_and_round_trips(kind: str) -> None:
    body = EXAMPLES[kind]()
    assert body_kind(body) == kind
    header = decode_header(encode(example_header(body)))
    assert decode_body(encode(body), header) == body
    assert decode_body_json(encode_json(body), header) == body


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_fixture_matches_its_builder_and_validates(name: str) -> None:
    raw = (FIXTURES / f"{name}.json").read_bytes()
    assert schemas.validate_json(raw) == []
    doc = json.loads(raw)
    body = msgspec.json.decode(json.dumps(doc["body"]), type=Body)
    assert body == SCENARIOS[name]()


def test_existing_intel_report_construction_still_works() -> None:
    # The shape other layers were written against: positional title, Narrative(text, lang).
    report = schemas.IntelReport("Route note", narrative=schemas.Narrative("text", "en"))
    data = encode(report)
    assert msgspec.msgpack.decode(data) == {
        "kind": "intel_report",
        "title": "Route note",
        "narrative": {"text": "text", "lang": "en"},
    }
    assert decode_body(data) == report


def test_header_kind_accepts_plain_string() -> None:
    header = example_header(mekong_route_report())
    h2 = msgspec.structs.replace(header, kind="intel_report")
    assert decode_header(encode(h2)).kind == Kind.INTEL_REPORT


def test_mekong_report_is_about_two_kilobytes() -> None:
    # The benchmark's "typical report" must stay typical.
    assert 1500 <= len(encode(mekong_route_report())) <= 3000
