"""Every message kind exports to a STIX 2.1 bundle that stix2-validator accepts in strict
mode with the orcon extension schema, carrying the OASIS TLP 2.0 marking and the orcon
marking on every object; misp-stix turns it into a MISP event with the TLP and orcon
tags and the distribution the restrictions allow."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from misp_stix_converter import stix_2_to_misp
from stix2validator import ValidationOptions, validate_instance

from clients.interop import markings as mk
from clients.interop import tags as tg
from clients.interop.stix import to_bundle
from schemas import TLP, Level, Purpose, Restrictions, examples

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "stix"
STRICT = ValidationOptions(strict=True, schema_dir=str(SCHEMA_DIR))


def _orcon_marking(bundle: dict[str, Any]) -> dict[str, Any]:
    found = [o for o in bundle["objects"] if o["type"] == "marking-definition"
             and mk.EXTENSION_ID in o.get("extensions", {})]
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("kind", sorted(examples.EXAMPLES))
def test_every_kind_is_valid_strict_stix(kind: str) -> None:
    body = examples.EXAMPLES[kind]()
    header = examples.example_header(body)
    bundle = to_bundle(header, body)
    result = validate_instance(bundle, STRICT)
    assert result.is_valid, [str(e) for e in result.errors]
    marks = {o["id"] for o in bundle["objects"] if o["type"] == "marking-definition"}
    assert mk.TLP_MARKING_IDS[TLP.AMBER] in marks
    # Every object the information is in carries every marking (TLP, orcon, statement).
    carriers = [o for o in bundle["objects"] if o["type"] not in (
        "marking-definition", "extension-definition") and o["id"] != mk.ORCON_IDENTITY_ID]
    assert carriers and all(set(o["object_marking_refs"]) == marks for o in carriers)
    ext = _orcon_marking(bundle)["extensions"][mk.EXTENSION_ID]
    assert ext["handling"] == ["H0", "H1", "H2"]  # purposes, H1, and H2 from TLP:AMBER
    assert ext["level"] == "RESTRICTED" and ext["message_id"] == header.id


def test_the_extension_schema_is_applied() -> None:
    """A broken orcon marking fails validation: the schema is really used, and strict."""
    body = examples.arrest_alert()
    bundle = to_bundle(examples.example_header(body), body)
    for change in ({"level": "TOP SECRET"}, {"handling": ["H9"]}, {"smuggled": True},
                   {"retention_days": 0}):
        bad = copy.deepcopy(bundle)
        _orcon_marking(bad)["extensions"][mk.EXTENSION_ID].update(change)
        result = validate_instance(bad, STRICT)
        assert not result.is_valid, change
        assert any(mk.EXTENSION_ID in str(e) for e in result.errors), change


def test_tlp_markings_are_the_oasis_objects() -> None:
    body = examples.mekong_route_report()
    for tlp in TLP:
        header = examples.example_header(body)
        header = type(header)(**{**{f: getattr(header, f) for f in header.__struct_fields__},
                                 "restrictions": Restrictions(tlp=tlp)})
        bundle = to_bundle(header, body)
        tlp_objs = [o for o in bundle["objects"] if o["id"] in mk.TLP_BY_MARKING_ID]
        assert len(tlp_objs) == 1
        o = tlp_objs[0]
        assert o["id"] == mk.TLP_MARKING_IDS[tlp]
        assert o["name"] == f"TLP:{tlp}" and o["created"] == mk.TLP2_CREATED
        assert o["extensions"][mk.TLP2_EXTENSION_ID] == {
            "extension_type": "property-extension", "tlp_2_0": str(tlp).lower()}


def _misp_stix(bundle: dict[str, Any], tmp_path: Path, distribution: int) -> dict[str, Any]:
    src = tmp_path / "bundle.json"
    src.write_text(json.dumps(bundle))
    result = stix_2_to_misp(src, distribution=distribution, single_event=True,
                            output_dir=tmp_path)
    assert result.get("success") == 1, result
    assert not result.get("errors"), result
    out = json.loads(Path(result["results"][0]).read_text())
    return out.get("Event", out)  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", sorted(examples.EXAMPLES))
def test_misp_stix_converts_with_tlp_and_orcon_tags(kind: str, tmp_path: Path) -> None:
    body = examples.EXAMPLES[kind]()
    header = examples.example_header(body)
    bundle = to_bundle(header, body)
    # misp-stix takes the distribution as an argument; the one the markings allow is
    # computed from what the bundle carries, as an importer would.
    allowed = tg.misp_distribution(header.level, header.restrictions)
    event = _misp_stix(bundle, tmp_path, allowed)
    tags = {t["name"] for t in event.get("Tag", [])}
    expected = set(tg.misp_tags(header.sender, header.id, header.level,
                                header.restrictions, header.evaluation))
    assert expected <= tags, expected - tags
    assert {"tlp:amber", "orcon:restrictions", 'orcon:handling="h2"'} <= tags
    assert int(event["distribution"]) == allowed == tg.ORG_ONLY
    # What misp-stix made of the bundle reads back no looser than the message.
    reading = tg.read_tags(tags)
    assert reading.unknown == [], reading.unknown
    assert reading.restrictions.expanded().no_onward_dissemination
    assert set(reading.restrictions.purposes) == set(header.restrictions.purposes)


def test_misp_stix_green_unclassified_goes_to_the_community(tmp_path: Path) -> None:
    body = examples.mekong_route_report()
    h = examples.example_header(body)
    h = type(h)(**{**{f: getattr(h, f) for f in h.__struct_fields__},
                   "level": Level.UNCLASSIFIED,
                   "restrictions": Restrictions(tlp=TLP.GREEN,
                                                purposes=[Purpose.SMUGGLING_OF_MIGRANTS])})
    bundle = to_bundle(h, body)
    allowed = tg.misp_distribution(h.level, h.restrictions)
    event = _misp_stix(bundle, tmp_path, allowed)
    assert allowed == tg.COMMUNITY and int(event["distribution"]) == tg.COMMUNITY
    assert "tlp:green" in {t["name"] for t in event["Tag"]}
