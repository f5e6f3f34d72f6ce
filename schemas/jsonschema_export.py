"""JSON Schema (draft 2020-12) export: one file per body kind, plus the header and a
whole message. Generated from the Structs by msgspec, so they cannot disagree with the
wire; `tests/schemas/test_jsonschema.py` fails when the committed files drift.

Semantic rules (ISO code lists, cross-field rules) are not in the JSON Schemas: a
document that passes them may still fail `orcon schema validate`.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import msgspec

from schemas.bodies import BODY_TYPES, Body
from schemas.header import SCHEMA_VERSION, Header

DRAFT = "https://json-schema.org/draft/2020-12/schema"
BASE_ID = "https://orcon.invalid/schemas/"
COMMITTED = Path(__file__).parent / "jsonschema"


def _pattern(regex: str) -> str:
    """Python patterns end in `\\Z`: Python's `$` also matches before a trailing newline,
    so "ID\\n" would pass. JSON Schema patterns are ECMA-262, where `\\Z` is not an
    anchor and `$` (without the m flag) already means the very end."""
    return regex[:-2] + "$" if regex.endswith("\\Z") else regex


def portable(node: Any) -> Any:
    """Descriptions come from docstrings, whose indentation msgspec has rendered
    differently across releases (0.23 dedents, earlier ones did not). Cleaning them
    here makes the committed files depend on the Structs, not on the msgspec version.
    Patterns are rewritten for ECMA-262 (`_pattern`)."""
    if isinstance(node, dict):
        return {
            k: inspect.cleandoc(v) if k == "description" and isinstance(v, str)
            else _pattern(v) if k == "pattern" and isinstance(v, str)
            else portable(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [portable(v) for v in node]
    return node


def _document(tp: Any, name: str, title: str) -> dict[str, Any]:
    schema = portable(msgspec.json.schema(tp))
    return {
        "$schema": DRAFT,
        "$id": f"{BASE_ID}{SCHEMA_VERSION}/{name}.json",
        "title": title,
        **schema,
    }


def schemas() -> dict[str, dict[str, Any]]:
    """File name (without .json) -> schema document."""
    out: dict[str, dict[str, Any]] = {
        "header": _document(Header, "header", "orcon message header"),
        "body": _document(Body, "body", "orcon message body (any kind)"),
    }
    for tp in BODY_TYPES:
        tag = tp.__struct_config__.tag
        assert isinstance(tag, str)
        out[tag] = _document(tp, tag, f"orcon {tag} body")
    (header_ref, body_ref), defs = msgspec.json.schema_components(
        (Header, Body), ref_template="#/$defs/{name}"
    )
    defs = portable(defs)
    message = {
        "$schema": DRAFT,
        "$id": f"{BASE_ID}{SCHEMA_VERSION}/message.json",
        "title": "orcon message: header and body",
        "type": "object",
        "properties": {"header": header_ref, "body": body_ref},
        "required": ["header", "body"],
        "additionalProperties": False,
        "$defs": defs,
    }
    out["message"] = message
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export(directory: str | Path) -> list[Path]:
    """Write every schema into `directory` (created if needed); return the paths."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = target / f"{name}.json"
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in export(COMMITTED):
        print(p)
