"""The compose forms come from the Structs: every field of every composable kind is in
its form, and every committed example survives the round trip through the form (flat
names posted by a browser -> `collect` -> the same document). Errors name fields the
form has, so each can be shown next to its input."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec
import pytest

import schemas
from clients.console import formspec as fs
from schemas import examples
from schemas.bodies import BODY_TYPES

EXAMPLES = [examples.mekong_route_report(), examples.forged_passport_ring(),
            examples.vessel_by_sea(), examples.mla_request(), examples.arrest_alert(),
            examples.information_request(), examples.document_verification_request(),
            examples.nationality_verification_request(), examples.extradition_request(),
            examples.reply()]


def _flatten(f: fs.Field, value: Any, builder: fs.Builder, out: list[tuple[str, str]]) -> None:
    """What a browser posts for `value` in field `f` (the inverse of `collect`)."""
    w = f.widget
    if w == "hidden":
        out.append((f.name, f.value))
    elif w == "object":
        for c in f.children:
            if c.key in value or c.widget == "hidden":
                _flatten(c, value.get(c.key), builder, out)
    elif w == "union":
        _flatten(builder.variant(f, value[f.tag]), value, builder, out)
    elif w == "list":
        for i, item in enumerate(value):
            variant = item.get(f.tag) if f.variants else None
            _flatten(builder.item(f, i, variant), item, builder, out)
    elif w in ("checks", "parties"):
        out.extend((f.name, str(v)) for v in value)
    elif w == "lines":
        out.append((f.name, "\n".join(value)))
    elif w == "checkbox":
        if value:
            out.append((f.name, "on"))
    elif isinstance(value, datetime | date):
        out.append((f.name, value.isoformat()))
    else:
        out.append((f.name, str(value)))


@pytest.mark.parametrize("kind", fs.composable_kinds())
def test_every_struct_field_is_in_its_form(kind: str) -> None:
    tp = next(t for t in BODY_TYPES if t.__struct_config__.tag == kind)
    form = fs.body_form(kind)
    assert {c.key for c in form.children} == {f.encode_name for f in
                                               msgspec.structs.fields(tp)} | {"kind"}
    required = {f.encode_name for f in msgspec.structs.fields(tp) if f.required}
    assert {c.key for c in form.children if c.required} == required | {"kind"}


def test_acts_are_not_composed_by_hand() -> None:
    kinds = fs.composable_kinds()
    assert "intel_report" in kinds and "reply" in kinds
    for act in ("acknowledgment", "use_declaration", "consent_request", "consent_decision",
                "forward_notice", "purge_receipt"):
        assert act not in kinds


@pytest.mark.parametrize("body", EXAMPLES, ids=lambda b: type(b).__name__)
def test_examples_round_trip_through_the_form(body: schemas.Body) -> None:
    kind = str(type(body).__struct_config__.tag)
    doc = msgspec.to_builtins(body)
    form = fs.body_form(kind)
    builder = fs.item_builder(kind)
    assert doc  # the example is not empty
    posted: list[tuple[str, str]] = []
    _flatten(form, _typed(body), builder, posted)
    got = fs.collect(form, fs.FormValues(posted), builder)
    assert schemas.validate_json(msgspec.json.encode(got)) == []
    assert schemas.decode_body_json(msgspec.json.encode(got)) == body


def _typed(value: Any) -> Any:
    """A Struct as nested dicts, keeping dates and datetimes (as a form shows them)."""
    if isinstance(value, msgspec.Struct):
        out = {f.encode_name: _typed(getattr(value, f.name))
               for f in msgspec.structs.fields(value)
               if getattr(value, f.name) != (f.default if f.default is not msgspec.NODEFAULT
                                              else object())
               and not (f.default_factory is not msgspec.NODEFAULT
                        and getattr(value, f.name) == f.default_factory())}
        tag = value.__struct_config__.tag
        if tag is not None:
            out[str(value.__struct_config__.tag_field)] = tag
        return out
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if hasattr(value, "value") and not isinstance(value, str | int | float):
        return value.value
    return value


def test_errors_name_fields_the_form_has() -> None:
    """An empty intel report: each error maps to a form name the page renders."""
    form = fs.body_form("intel_report")
    got = fs.collect(form, fs.FormValues([("b.narrative.lang", "EN!")]),
                     fs.item_builder("intel_report"))
    errors = schemas.validate_json(msgspec.json.encode(got))
    names = fs.errors_by_field(errors)
    assert "b.title" in names and "b.narrative.text" in names
    rendered = {c.name for c in form.children} | {c.name for c in form.children[2].children}
    assert set(names) <= rendered | {"b.narrative"}
    assert fs.form_name("body.persons[2].documents[0].issuing_state") == \
        "b.persons.2.documents.0.issuing_state"
    assert fs.form_name("header.restrictions.exclude[0]") == "h.restrictions.exclude.0"


def test_header_form_offers_every_restriction() -> None:
    header = fs.header_form()
    restrictions = next(c for c in header.children if c.key == "restrictions")
    assert {c.key for c in restrictions.children} == {
        f.encode_name for f in msgspec.structs.fields(schemas.Restrictions)}
    pickers = {c.name: c.widget for c in restrictions.children}
    assert pickers["h.restrictions.exclude"] == "parties"
    assert pickers["h.restrictions.release_to"] == "parties"
    assert pickers["h.restrictions.tlp"] == "select"
    assert pickers["h.restrictions.expires_at"] == "datetime"
    tlp = next(c for c in restrictions.children if c.key == "tlp")
    assert set(tlp.options) == {str(t) for t in schemas.TLP}
