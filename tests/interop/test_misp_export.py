"""The MISP export: objects valid against pymisp's object templates, tags from the real
tlp / PAP / admiralty-scale taxonomies and from the orcon taxonomy shipped in the
repository (valid against MISP's taxonomy schema), distribution never wider than the
restrictions allow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytaxonomies
import pytest
from pymisp import MISPEvent
from pytaxonomies import Taxonomies, Taxonomy

from clients.interop import publish
from clients.interop import tags as tg
from clients.interop.misp import to_event
from schemas import TLP, Level, Purpose, Restrictions, examples
from schemas.codes import AlertType

TAXONOMY_DATA = Path(pytaxonomies.__file__).parent / "data" / "misp-taxonomies"


def _with(body: Any, **changes: Any) -> Any:
    h = examples.example_header(body)
    return msgspec.structs.replace(h, **changes)


def _check_against_templates(ev: MISPEvent) -> None:
    for o in ev.objects:
        template = o._definition
        assert template is not None, o.name
        o._validate()  # required / requiredOneOf of the template
        for a in o.attributes:
            spec = template["attributes"].get(a.object_relation)
            assert spec is not None, f"{o.name}.{a.object_relation} not in the template"
            assert a.type == spec["misp-attribute"], (o.name, a.object_relation)
            if "values_list" in spec:
                assert a.value in spec["values_list"], (o.name, a.object_relation, a.value)
        multiple = [r for r in {a.object_relation for a in o.attributes}
                    if sum(a.object_relation == r for a in o.attributes) > 1]
        for r in multiple:
            assert template["attributes"][r].get("multiple"), f"{o.name}.{r} repeated"


@pytest.mark.parametrize("kind", sorted(examples.EXAMPLES))
def test_every_kind_validates_against_the_object_templates(kind: str) -> None:
    body = examples.EXAMPLES[kind]()
    ev = to_event(examples.example_header(body), body)
    _check_against_templates(ev)
    # And it survives MISP's own JSON format, as a MISP instance would load it.
    again = MISPEvent()
    again.load(json.loads(ev.to_json()))
    assert {t.name for t in again.tags} == {t.name for t in ev.tags}


def test_entities_map_to_the_expected_templates() -> None:
    names = {k: sorted(o.name for o in to_event(examples.example_header(b()), b()).objects)
             for k, b in examples.EXAMPLES.items()}
    assert names["alert"] == ["interpol-notice", "person"]
    assert "ftm-Vessel" in names["vessel_request"]
    assert "vehicle" in names["intel_report"] and "geolocation" in names["intel_report"]
    assert {"ftm-Passport", "phone-number", "person"} <= set(names["information_request"])
    assert names["document_verification_request"] == ["ftm-Passport"]


def test_alert_carries_the_interpol_notice_colour() -> None:
    body = examples.arrest_alert()
    assert body.type == AlertType.ARREST_SOUGHT
    ev = to_event(examples.example_header(body), body)
    notice = next(o for o in ev.objects if o.name == "interpol-notice")
    assert [a.value for a in notice.attributes if a.object_relation == "notice-color"] == ["Red"]
    person = next(o for o in ev.objects if o.name == "person")
    assert "Suspect" in [a.value for a in person.attributes if a.object_relation == "role"]


def test_tags_come_from_the_real_taxonomies() -> None:
    body = examples.mekong_route_report()
    h = _with(body, restrictions=Restrictions(
        tlp=TLP.AMBER_STRICT, purposes=[Purpose.SMUGGLING_OF_MIGRANTS], not_to_suspects=True,
        release_to=["TH", "KH"], exclude=["MM"], destroy_after_days=30))
    ev = to_event(h, body)
    tags = [t.name for t in ev.tags]
    known = Taxonomies()
    ours = Taxonomy(json.loads(publish.TAXONOMY.read_text()))
    ours_tags = set(ours.machinetags())
    free = {f"orcon:{p}" for p in ("release-to", "exclude", "not-before", "expires-at",
                                   "retention-days", "originator", "message-id")}
    for tag in tags:
        if tag.startswith("orcon:"):
            assert tag in ours_tags or tag.split("=")[0] in free, tag
            assert tag.split("=")[0].split(":")[1] in ours.predicates, tag
        else:
            assert known.revert_machinetag(tag), tag  # tlp, PAP, admiralty-scale
    assert "tlp:amber+strict" in tags and "PAP:RED" in tags
    assert 'admiralty-scale:source-reliability="b"' in tags
    assert 'orcon:release-to="KH"' in tags and 'orcon:exclude="MM"' in tags


def test_shipped_taxonomy_is_valid_and_current() -> None:
    schema = json.loads((TAXONOMY_DATA / "schema.json").read_text())
    doc = json.loads(publish.TAXONOMY.read_text())
    jsonschema.Draft7Validator(schema).validate(doc)
    loaded = Taxonomy(doc)  # pytaxonomies' own loader: every predicate and entry has a uuid
    assert loaded.name == "orcon" and len(loaded.machinetags()) > 20
    for path, text in publish.artefacts().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run python -m clients.interop.publish")


def test_invalid_taxonomy_is_caught_by_the_schema() -> None:
    """The schema check above can fail: a misspelt field or a text version is refused."""
    schema = json.loads((TAXONOMY_DATA / "schema.json").read_text())
    for change in ({"version": "1"}, {"namespaces": "orcon"}, {"predicates": []}):
        doc = json.loads(publish.TAXONOMY.read_text()) | change
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft7Validator(schema).validate(doc)


@pytest.mark.parametrize(("level", "r", "expected"), [
    (Level.RESTRICTED, Restrictions(tlp=TLP.GREEN), tg.ORG_ONLY),  # level above UNCLASSIFIED
    (Level.UNCLASSIFIED, Restrictions(no_onward_dissemination=True), tg.ORG_ONLY),
    (Level.UNCLASSIFIED, Restrictions(tlp=TLP.AMBER), tg.ORG_ONLY),
    (Level.UNCLASSIFIED, Restrictions(release_to=["TH"]), tg.ORG_ONLY),
    (Level.UNCLASSIFIED, Restrictions(exclude=["MM"]), tg.ORG_ONLY),
    (Level.UNCLASSIFIED, Restrictions(tlp=TLP.GREEN), tg.COMMUNITY),
    (Level.UNCLASSIFIED, Restrictions(), tg.COMMUNITY),
    (Level.UNCLASSIFIED, Restrictions(tlp=TLP.CLEAR,
                                      purposes=[Purpose.INVESTIGATION]), tg.COMMUNITY),
    (Level.UNCLASSIFIED, Restrictions(tlp=TLP.CLEAR), tg.ALL),
])
def test_distribution_never_exceeds_the_restrictions(level: Level, r: Restrictions,
                                                     expected: int) -> None:
    body = examples.mekong_route_report()
    ev = to_event(_with(body, level=level, restrictions=r), body)
    assert ev.distribution == expected
    # Objects and attributes inherit the event's distribution: never wider.
    assert all(int(o.distribution) == 5 for o in ev.objects)
    assert all(int(a.distribution) == 5 for a in ev.attributes)


def test_conditions_travel_as_attributes() -> None:
    from schemas import Condition

    body = examples.mekong_route_report()
    cond = Condition(text='Do not "share" with immigration; not before trial.', lang="en")
    ev = to_event(_with(body, restrictions=Restrictions(conditions=[cond])), body)
    carried = [(a.value, a.comment) for a in ev.attributes
               if a.comment.startswith(tg.CONDITION_COMMENT)]
    assert carried == [(cond.text, "orcon:condition:en")]
    assert 'orcon:handling="h3"' in [t.name for t in ev.tags]
