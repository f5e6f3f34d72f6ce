"""The committed JSON Schemas are what the Structs generate, and they accept the examples."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from schemas.codec import encode_json
from schemas.examples import EXAMPLES, example_header, mekong_route_report
from schemas.jsonschema_export import COMMITTED, export, render, schemas


def test_committed_schemas_have_not_drifted() -> None:
    generated = schemas()
    on_disk = {p.stem for p in COMMITTED.glob("*.json")}
    assert on_disk == set(generated), "run: python -m schemas.jsonschema_export"
    for name, schema in generated.items():
        assert (COMMITTED / f"{name}.json").read_text(encoding="utf-8") == render(schema), (
            f"{name}.json drifted from the Structs: run python -m schemas.jsonschema_export"
        )


def test_export_writes_one_file_per_kind(tmp_path: Path) -> None:
    paths = export(tmp_path / "out")
    assert {p.stem for p in paths} >= set(EXAMPLES) | {"header", "message"}


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_examples_validate_against_their_schema(kind: str) -> None:
    schema = json.loads((COMMITTED / f"{kind}.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    doc = json.loads(encode_json(EXAMPLES[kind]()))
    jsonschema.Draft202012Validator(schema).validate(doc)
    doc["unexpected"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(doc)


def test_message_schema() -> None:
    schema = json.loads((COMMITTED / "message.json").read_text(encoding="utf-8"))
    body = mekong_route_report()
    doc = {
        "header": json.loads(encode_json(example_header(body))),
        "body": json.loads(encode_json(body)),
    }
    jsonschema.Draft202012Validator(schema).validate(doc)
    doc["header"]["kind"] = "gossip"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(doc)
