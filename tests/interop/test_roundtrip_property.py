"""Property: importing what orcon exported never yields looser restrictions (or a lower
level) than the message had, through STIX and through MISP; a marking the importer
does not understand never loosens anything and makes the draft most restrictive."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients.interop import importer
from clients.interop import markings as mk
from clients.interop.export import render
from policies.acts import loosened_fields
from schemas import TLP, Condition, Level, Purpose, Restrictions, examples

PARTIES = ["TH", "KH", "LA", "MM", "VN", "TH-AHTD", "KH-AHTJP", "COMMIT"]
SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

times = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 1, 1),
                     timezones=st.sampled_from([UTC, timezone(timedelta(hours=7)),
                                                timezone(timedelta(hours=-5, minutes=-30))]))
condition_text = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF,
                                       blacklist_categories=("Cs",)),
                         min_size=1, max_size=60).filter(lambda s: s.strip() == s and s)


@st.composite
def restrictions(draw: st.DrawFn) -> Restrictions:
    return Restrictions(
        purposes=draw(st.lists(st.sampled_from(list(Purpose)), unique=True, max_size=3)),
        no_evidential_use=draw(st.booleans()),
        no_onward_dissemination=draw(st.booleans()),
        release_to=draw(st.lists(st.sampled_from(PARTIES), unique=True, max_size=3)),
        exclude=draw(st.lists(st.sampled_from(PARTIES), unique=True, max_size=2)),
        not_before=draw(st.none() | times),
        expires_at=draw(st.none() | times),
        destroy_after_days=draw(st.none() | st.integers(1, 36500)),
        no_public_disclosure=draw(st.booleans()),
        not_to_suspects=draw(st.booleans()),
        consult_before_action=draw(st.booleans()),
        conditions=draw(st.lists(st.builds(Condition, text=condition_text,
                                           lang=st.sampled_from(["en", "th", "fr"])),
                                 unique=True, max_size=2)),
        tlp=draw(st.none() | st.sampled_from(list(TLP))))


def _header(r: Restrictions, level: Level, kind: str) -> tuple[Any, Any]:
    body = examples.EXAMPLES[kind]()
    h = msgspec.structs.replace(examples.example_header(body), restrictions=r, level=level)
    return h, body


def _import(fmt: str, data: bytes) -> importer.Draft:
    return importer.from_stix(data) if fmt == "stix" else importer.from_misp(data)


def _assert_not_looser(original: Restrictions, level: Level, d: importer.Draft) -> None:
    assert loosened_fields(original, d.header.restrictions) == [], (
        original, d.header.restrictions)
    assert d.header.level.rank >= level.rank


@SETTINGS
@given(r=restrictions(), level=st.sampled_from(list(Level)),
       kind=st.sampled_from(["intel_report", "alert", "vessel_request", "reply"]),
       fmt=st.sampled_from(["stix", "misp"]))
def test_import_of_export_is_never_looser(r: Restrictions, level: Level, kind: str,
                                          fmt: str) -> None:
    h, body = _header(r, level, kind)
    data, _ = render(fmt, h, body, r)  # type: ignore[arg-type]
    draft = _import(fmt, data)
    _assert_not_looser(r, level, draft)
    assert draft.unknown_markings == []  # our own markings are all understood
    assert draft.source.message_id == h.id and draft.source.originator == h.sender


def _unknown_stix(bundle: dict[str, Any], marking: dict[str, Any]) -> dict[str, Any]:
    bundle = json.loads(json.dumps(bundle))
    bundle["objects"].insert(0, marking)
    for o in bundle["objects"]:
        if o["type"] == "report":
            o["object_marking_refs"].append(marking["id"])
    return bundle


def _foreign_markings(draw_text: str) -> list[dict[str, Any]]:
    base = {"type": "marking-definition", "spec_version": "2.1",
            "created": "2025-01-01T00:00:00.000Z"}
    return [
        base | {"id": f"marking-definition--{uuid.uuid4()}", "definition_type": "statement",
                "definition": {"statement": draw_text}},
        base | {"id": f"marking-definition--{uuid.uuid4()}", "name": "IEP",
                "extensions": {"extension-definition--762e2e97-ee51-43e5-a9ea-165fbb862c4a": {
                    "extension_type": "property-extension", "tlp": "white",
                    "permitted_actions": "externally-visible-direct-actions"}}},
    ]


@SETTINGS
@given(r=restrictions(), level=st.sampled_from(list(Level)), text=condition_text,
       which=st.integers(0, 1))
def test_an_unknown_stix_marking_never_loosens(r: Restrictions, level: Level, text: str,
                                               which: int) -> None:
    h, body = _header(r, level, "intel_report")
    data, _ = render("stix", h, body, r)
    plain = importer.from_stix(data)
    marking = _foreign_markings(text)[which]
    with_unknown = importer.from_stix(json.dumps(_unknown_stix(json.loads(data),
                                                               marking)).encode())
    _assert_not_looser(r, level, with_unknown)
    assert loosened_fields(plain.header.restrictions, with_unknown.header.restrictions) == []
    assert loosened_fields(mk.MOST_RESTRICTIVE, with_unknown.header.restrictions) == []
    assert with_unknown.header.level is Level.SECRET
    assert any(marking["id"] in u for u in with_unknown.unknown_markings)


@SETTINGS
@given(r=restrictions(), level=st.sampled_from(list(Level)),
       tag=st.sampled_from(["tlp:ex:chr", "tlp:unclear", "PAP:UNKNOWN", "orcon:frobnicate",
                            'orcon:handling="h7"', 'orcon:level="top-secret"',
                            'orcon:release-to="not a party"', 'orcon:expires-at="soon"',
                            'de-vs:einstufung="VS-NfD"', "statement:Internal use only"]))
def test_an_unknown_misp_tag_never_loosens(r: Restrictions, level: Level, tag: str) -> None:
    h, body = _header(r, level, "intel_report")
    data, _ = render("misp", h, body, r)
    event = json.loads(data)
    event["Event"]["Tag"].append({"name": tag})
    draft = importer.from_misp(json.dumps(event).encode())
    _assert_not_looser(r, level, draft)
    assert loosened_fields(mk.MOST_RESTRICTIVE, draft.header.restrictions) == []
    assert draft.header.level is Level.SECRET and tag in draft.unknown_markings


def test_a_classification_tag_is_not_a_marking() -> None:
    """Tags that classify content (not handling) leave the restrictions alone."""
    h, body = _header(Restrictions(tlp=TLP.GREEN), Level.UNCLASSIFIED, "intel_report")
    data, _ = render("misp", h, body, h.restrictions)
    event = json.loads(data)
    event["Event"]["Tag"].append({"name": 'circl:incident-classification="fraud"'})
    draft = importer.from_misp(json.dumps(event).encode())
    assert draft.unknown_markings == [] and draft.header.restrictions.tlp == TLP.GREEN


def test_a_marking_referenced_but_missing_is_unknown() -> None:
    h, body = _header(Restrictions(tlp=TLP.CLEAR), Level.UNCLASSIFIED, "intel_report")
    data, _ = render("stix", h, body, h.restrictions)
    bundle = json.loads(data)
    ghost = f"marking-definition--{uuid.uuid4()}"
    for o in bundle["objects"]:
        if o["type"] == "report":
            o["object_marking_refs"].append(ghost)
    draft = importer.from_stix(json.dumps(bundle).encode())
    assert draft.header.restrictions.tlp == TLP.RED and draft.header.level is Level.SECRET
    assert any(ghost in u for u in draft.unknown_markings)


def test_a_tampered_orcon_marking_is_unknown_not_ignored() -> None:
    """An orcon marking that does not match its schema is unreadable: most restrictive,
    never dropped (dropping it would lose H2)."""
    r = Restrictions(no_onward_dissemination=True)
    h, body = _header(r, Level.CONFIDENTIAL, "intel_report")
    data, _ = render("stix", h, body, r)
    bundle = json.loads(data)
    for o in bundle["objects"]:
        if mk.EXTENSION_ID in o.get("extensions", {}):
            o["extensions"][mk.EXTENSION_ID]["handling"] = ["H2", "H9"]
    draft = importer.from_stix(json.dumps(bundle).encode())
    assert draft.header.restrictions.no_onward_dissemination
    assert draft.header.level is Level.SECRET and draft.unknown_markings


def test_conflicting_markings_are_refused_naming_the_field() -> None:
    a = Restrictions(purposes=[Purpose.CORRUPTION])
    b = Restrictions(purposes=[Purpose.MONEY_LAUNDERING])
    with pytest.raises(mk.MarkingConflict) as exc:
        mk.tighten(a, b)
    assert exc.value.field == "purposes" and "corruption" in str(exc.value)


def test_misp_distribution_is_a_marking_on_import() -> None:
    h, body = _header(Restrictions(), Level.UNCLASSIFIED, "intel_report")
    data, _ = render("misp", h, body, h.restrictions)
    event = json.loads(data)
    event["Event"]["distribution"] = "0"
    assert importer.from_misp(json.dumps(event).encode()).header.restrictions \
        .no_onward_dissemination
    event["Event"]["distribution"] = "4"  # a sharing group: its members only
    assert importer.from_misp(json.dumps(event).encode()).header.restrictions \
        .no_onward_dissemination
    event["Event"]["distribution"] = "9"  # no such level: refused, not guessed
    with pytest.raises(importer.InteropImportError) as exc:
        importer.from_misp(json.dumps(event).encode())
    assert exc.value.field == "distribution" and "valid: [0, 1, 2, 3, 4]" in str(exc.value)
    del event["Event"]["distribution"]  # absent: the tightest level, and a note
    draft = importer.from_misp(json.dumps(event).encode())
    assert draft.header.restrictions.no_onward_dissemination
    assert any("no distribution" in n for n in draft.notes)


def test_a_long_foreign_statement_is_kept_whole() -> None:
    """A statement longer than one orcon condition becomes several, never shortened."""
    h, body = _header(Restrictions(), Level.UNCLASSIFIED, "intel_report")
    data, _ = render("stix", h, body, h.restrictions)
    text = "Handle per agreement 7. " * 300  # 7,200 characters
    marking = _foreign_markings(text)[0]
    draft = importer.from_stix(json.dumps(_unknown_stix(json.loads(data), marking)).encode())
    conds = draft.header.restrictions.conditions
    assert "".join(c.text for c in conds) == text.strip() and len(conds) == 4


def test_shortened_text_is_noted() -> None:
    h, body = _header(Restrictions(), Level.UNCLASSIFIED, "intel_report")
    data, _ = render("misp", h, body, h.restrictions)
    event = json.loads(data)
    event["Event"]["info"] = "x" * 400
    draft = importer.from_misp(json.dumps(event).encode())
    assert len(draft.body.title) == 300
    assert any("title shortened from 400" in n for n in draft.notes)


@SETTINGS
@given(a=restrictions(), b=restrictions())
def test_tighten_is_never_looser_than_either(a: Restrictions, b: Restrictions) -> None:
    try:
        both = mk.tighten(a, b)
    except mk.MarkingConflict as exc:  # allow-lists with nothing in common: refused
        assert exc.field in ("purposes", "release_to")
        return
    assert loosened_fields(a, both) == [] and loosened_fields(b, both) == []
