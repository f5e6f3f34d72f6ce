"""A message as a STIX 2.1 bundle, built with the `stix2` library.

The bundle holds a `report` (the message; its `labels` repeat the MISP tags so MISP and
misp-stix import them as event tags), an `identity` for the originating agency, the
entities mapped to standard objects (persons to `identity` individuals, suspects and
facilitators also to `threat-actor` criminals, groups to `threat-actor` crime
syndicates, places to `location`; conveyances and documents, which STIX has no object
for, to `note`s on the report), and the markings every object carries: the OASIS TLP
2.0 marking, the orcon marking with its extension, and a statement. The orcon
extension definition and the identity that publishes it travel in the bundle, so a
reader needs nothing else to find the schema.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import stix2

import schemas
from clients.interop import markings as mk
from clients.interop import tags as tg
from clients.interop.content import Content, gather, person_name, text_of
from schemas.codes import AlertType, PersonRole
from schemas.entities import IdentityDocument, Person, Place, Vehicle, Vessel

# INTERPOL notice colours of the alert types (toolkit 6.16); also used by the MISP export.
NOTICE_COLOUR = {
    AlertType.ARREST_SOUGHT: "Red",
    AlertType.PERSON_INFORMATION: "Blue",
    AlertType.REPEAT_OFFENDER_WARNING: "Green",
    AlertType.MISSING_PERSON: "Yellow",
    AlertType.UNIDENTIFIED_PERSON: "Black",
    AlertType.MODUS_OPERANDI: "Purple",
}
_OFFENDERS = frozenset({PersonRole.SUSPECT, PersonRole.FACILITATOR})


def _id(kind: str) -> str:
    return f"{kind}--{uuid.uuid4()}"


def tlp_marking(tlp: schemas.TLP) -> stix2.MarkingDefinition:
    """The OASIS TLP 2.0 marking definition, exactly as published."""
    return stix2.MarkingDefinition(
        id=mk.TLP_MARKING_IDS[tlp], created=mk.TLP2_CREATED, name=f"TLP:{tlp}",
        extensions={mk.TLP2_EXTENSION_ID: {"extension_type": "property-extension",
                                           "tlp_2_0": str(tlp).lower()}})


def orcon_identity() -> stix2.Identity:
    return stix2.Identity(id=mk.ORCON_IDENTITY_ID, created=mk.EXTENSION_CREATED,
                          modified=mk.EXTENSION_CREATED, name="orcon",
                          identity_class="system",
                          description="orcon, the restricted intelligence-sharing broker "
                                      "that publishes the orcon marking extension")


def extension_definition() -> stix2.ExtensionDefinition:
    return stix2.ExtensionDefinition(
        id=mk.EXTENSION_ID, created=mk.EXTENSION_CREATED, modified=mk.EXTENSION_CREATED,
        created_by_ref=mk.ORCON_IDENTITY_ID, name="orcon restrictions marking",
        description="The originator's use restrictions on information shared through "
                    "orcon (Article 10(2) of the Smuggling of Migrants Protocol), as a "
                    "property extension of a marking-definition: purposes (H0), no "
                    "evidential use (H1), no onward dissemination (H2), conditions (H3), "
                    "release-to, exclude, not-before, expiry, retention, no public "
                    "disclosure, not to suspects, consult before action, level.",
        schema=f"JSON Schema (draft 2020-12) in the orcon repository: "
               f"{mk.EXTENSION_SCHEMA_PATH}",
        version=mk.EXTENSION_VERSION, extension_types=["property-extension"])


def orcon_marking(header: schemas.Header, restrictions: schemas.Restrictions,
                  creator: str) -> stix2.MarkingDefinition:
    props = msgspec.to_builtins(mk.to_marking(header.sender, header.id, header.level,
                                              restrictions))
    return stix2.MarkingDefinition(
        id=_id("marking-definition"), created=header.created_at, created_by_ref=creator,
        name=mk.MARKING_NAME, extensions={mk.EXTENSION_ID: props})


def statement_marking(header: schemas.Header, restrictions: schemas.Restrictions,
                      creator: str) -> stix2.MarkingDefinition:
    return stix2.MarkingDefinition(
        id=_id("marking-definition"), created=header.created_at, created_by_ref=creator,
        definition_type="statement",
        definition={"statement": mk.statement(header.sender, header.level, restrictions)})


class _Builder:
    def __init__(self, header: schemas.Header, creator: str, marks: list[str]) -> None:
        self.common: dict[str, Any] = {"created_by_ref": creator, "object_marking_refs": marks,
                                       "created": header.created_at,
                                       "modified": header.created_at}
        self.objects: list[Any] = []
        self.refs: list[str] = []
        self.by_ref: dict[str, str] = {}  # local entity ref -> STIX id

    def add(self, obj: Any) -> Any:
        self.objects.append(obj)
        if obj.type != "relationship":
            self.refs.append(obj.id)
        return obj

    def relate(self, source: str, rel: str, target: str, description: str | None = None) -> None:
        kw = {"description": description} if description else {}
        self.add(stix2.Relationship(source_ref=source, relationship_type=rel,
                                    target_ref=target, **self.common, **kw))

    def location(self, what: str, place: Place) -> str:
        kw: dict[str, Any] = {"country": place.country}
        if place.locality:
            kw["city"] = place.locality
        if place.position is not None:
            kw |= {"latitude": place.position.lat, "longitude": place.position.lon}
        name = ", ".join(x for x in (place.locality, place.country) if x)
        loc = self.add(stix2.Location(name=name, description=what, **kw, **self.common))
        return str(loc.id)

    def person(self, p: Person) -> None:
        details = []
        if p.nationalities:
            details.append("nationalities: " + ", ".join(p.nationalities))
        if p.born_on is not None:
            details.append(f"born on {p.born_on.isoformat()}")
        elif p.birth_year is not None:
            details.append(f"born in {p.birth_year}")
        if p.sex is not None:
            details.append(f"sex (ICAO 9303): {p.sex}")
        if p.minor:
            details.append("a minor")
        for d in p.documents:
            details.append(_document_text(d))
        if p.aliases:
            details.append("aliases: " + ", ".join(p.aliases))
        if p.description is not None:
            details.append(p.description.text)
        kw: dict[str, Any] = {}
        if p.phones:
            kw["contact_information"] = ", ".join(p.phones)
        if details:
            kw["description"] = "; ".join(details)
        ident = self.add(stix2.Identity(name=person_name(p), identity_class="individual",
                                        roles=[str(r) for r in p.roles], **kw, **self.common))
        self.by_ref[p.ref] = ident.id
        if set(p.roles) & _OFFENDERS:
            actor = self.add(stix2.ThreatActor(
                name=person_name(p), threat_actor_types=["criminal"],
                aliases=list(p.aliases) or None, **self.common))
            self.relate(actor.id, "attributed-to", ident.id)
            self.by_ref[p.ref] = actor.id
        if p.last_known_location is not None:
            loc = self.location(f"last known location of {p.ref}", p.last_known_location)
            self.relate(ident.id, "located-at", loc)

    def group(self, g: schemas.entities.Group) -> None:
        kw: dict[str, Any] = {}
        if g.aliases:
            kw["aliases"] = list(g.aliases)
        if g.methods is not None:
            kw["description"] = g.methods.text
        actor = self.add(stix2.ThreatActor(name=g.name or f"group {g.ref}",
                                           threat_actor_types=["crime-syndicate"],
                                           **kw, **self.common))
        self.by_ref[g.ref] = actor.id
        for member in g.members:
            target = self.by_ref.get(member)
            if target is not None:
                self.relate(actor.id, "related-to", target, f"{member} is a member")
        for country in g.active_in:
            loc = self.add(stix2.Location(country=country, name=country,
                                          description=f"{g.ref} is active here",
                                          **self.common))
            self.relate(actor.id, "located-at", loc.id)


def _document_text(d: IdentityDocument) -> str:
    bits = [f"document type {d.type} issued by {d.issuing_state}", f"status {d.status}"]
    if d.number:
        bits.append(f"number {d.number}")
    if d.nationality:
        bits.append(f"nationality as printed {d.nationality}")
    if d.name_on_document:
        bits.append(f"name on document {d.name_on_document}")
    if d.expires_on:
        bits.append(f"expires {d.expires_on.isoformat()}")
    if d.findings is not None:
        bits.append(f"findings: {d.findings.text}")
    return ", ".join(bits)


def _conveyance_text(v: Vehicle | Vessel | schemas.entities.Aircraft) -> str:
    fields = msgspec.to_builtins(v)
    return "; ".join(f"{k}: {val}" for k, val in fields.items() if k not in ("type", "ref"))


def to_bundle(header: schemas.Header, body: schemas.Body,
              restrictions: schemas.Restrictions | None = None) -> dict[str, Any]:
    """The STIX 2.1 bundle (as JSON-ready dict) of one message under `restrictions`
    (default: the header's; a forwarded copy passes the tightened ones it holds)."""
    r = restrictions if restrictions is not None else header.restrictions
    c: Content = gather(body)
    sender_id = _id("identity")
    tlp = r.expanded().tlp
    markings: list[Any] = [orcon_marking(header, r, sender_id),
                           statement_marking(header, r, sender_id)]
    if tlp is not None:
        markings.insert(0, tlp_marking(schemas.TLP(tlp)))
    marks = [m.id for m in markings]
    b = _Builder(header, sender_id, marks)
    sender = stix2.Identity(id=sender_id, name=header.sender, identity_class="organization",
                            description="the agency that originated the information",
                            **b.common)
    for p in c.persons:
        b.person(p)
    for g in c.groups:
        b.group(g)
    for what, place in c.places:
        b.location(what, place)
    lines: list[tuple[str, str]] = []
    for v in c.conveyances:
        lines.append((f"{v.__struct_config__.tag} {v.ref}", _conveyance_text(v)))
    for d in c.documents:
        lines.append((f"travel or identity document {d.number or ''}".strip(),
                      _document_text(d)))
    for phone in c.phones:
        lines.append(("phone number", phone))
    for a in c.addresses:
        lines.append(("address", ", ".join(x for x in (*a.lines, a.locality, a.country) if x)))
    if isinstance(body, schemas.Alert):
        colour = NOTICE_COLOUR[AlertType(body.type)]
        lines.append(("INTERPOL notice colour", f"{colour} ({body.type})"))
    # STIX has no object for conveyances, documents or phone numbers (and misp-stix reads
    # no `note`): they go in the report's description, one line each.
    description = text_of(c)
    if lines:
        description += "\n\n" + "\n".join(f"{a}: {t}" for a, t in lines)
    labels = tg.misp_tags(header.sender, header.id, header.level, r, header.evaluation)
    report = stix2.Report(
        name=f"{c.kind.replace('_', ' ')}: {c.title}",
        description=description, published=header.created_at, lang=c.lang,
        report_types=["threat-report"],
        object_refs=[sender.id, *b.refs],
        labels=labels,
        external_references=[{"source_name": "orcon", "external_id": header.id,
                              "description": f"orcon {header.kind} from {header.sender}"}],
        **b.common)
    objects = [orcon_identity(), extension_definition(), *markings, sender, *b.objects,
               report]
    bundle = stix2.Bundle(objects=objects)
    return json.loads(bundle.serialize())  # type: ignore[no-any-return]

