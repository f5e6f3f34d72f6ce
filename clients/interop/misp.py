"""A message as a MISP event, built with `pymisp` and its object templates.

The event carries the restrictions as tags (tlp, PAP, admiralty-scale and the orcon
taxonomy, see `tags.misp_tags`), each H3 condition as a `text` attribute commented
`orcon:condition:<lang>`, and a distribution no wider than the restrictions allow
(`tags.misp_distribution`). Entities become objects from MISP's templates: persons
`person`, alerts `interpol-notice` (the notice colour of the alert type), vehicles
`vehicle`, vessels `ftm-Vessel`, aircraft `ftm-Airplane`, travel and identity documents
`ftm-Passport`, phone numbers `phone-number`, places `geolocation`.
"""

from __future__ import annotations

from typing import Any

from pymisp import MISPEvent, MISPObject

import schemas
from clients.interop import tags as tg
from clients.interop.content import gather, person_name, text_of
from clients.interop.stix import NOTICE_COLOUR
from schemas.codes import AlertType, PersonRole, Urgency
from schemas.entities import Aircraft, IdentityDocument, Person, Place, Vehicle, Vessel

# orcon roles onto the `person` template's role list; a smuggled migrant is none of
# them (the Protocol makes migrants the object of the crime, not victims or suspects),
# so that role travels only in `function`, with every orcon role.
_ROLE = {PersonRole.SUSPECT: "Suspect", PersonRole.FACILITATOR: "Accomplice",
         PersonRole.VICTIM: "Victim", PersonRole.WITNESS: "Witness"}
_GENDER = {"F": "Female", "M": "Male", "X": "Other"}
_THREAT_LEVEL = {Urgency.URGENT: 1, Urgency.PRIORITY: 2, Urgency.ROUTINE: 3}


def _obj(name: str) -> MISPObject:
    # strict: an object relation the template does not define raises at once
    return MISPObject(name, strict=True, standalone=False)


def _put(o: MISPObject, relation: str, value: Any) -> None:
    if value is None or value == "" or value == []:
        return
    for v in value if isinstance(value, list) else [value]:
        o.add_attribute(relation, value=str(v))


def _person(p: Person) -> MISPObject:
    o = _obj("person")
    if p.given_names or p.family_name:
        _put(o, "first-name", p.given_names)
        _put(o, "last-name", p.family_name)
    else:
        _put(o, "full-name", person_name(p))
    _put(o, "alias", list(p.aliases))
    _put(o, "date-of-birth", p.born_on.isoformat() if p.born_on else None)
    _put(o, "gender", _GENDER.get(str(p.sex)) if p.sex else None)
    _put(o, "nationality", list(p.nationalities))
    if p.place_of_birth is not None:
        _put(o, "place-of-birth", _place_text(p.place_of_birth))
    _put(o, "phone-number", list(p.phones))
    _put(o, "role", [_ROLE[PersonRole(r)] for r in p.roles if PersonRole(r) in _ROLE])
    _put(o, "function", ", ".join(str(r) for r in p.roles))
    passport = next((d for d in p.documents if d.type.startswith("P") and d.number), None)
    if passport is not None:
        _put(o, "passport-number", passport.number)
        _put(o, "passport-country", passport.issuing_state)
        _put(o, "passport-expiration",
             passport.expires_on.isoformat() if passport.expires_on else None)
    if p.description is not None:
        _put(o, "text", p.description.text)
    return o


def _notice(colour: str, alert: schemas.Alert, p: Person | None) -> MISPObject:
    o = _obj("interpol-notice")
    _put(o, "notice-color", colour)
    _put(o, "charges", alert.warrant or alert.title)
    if p is not None:
        _put(o, "forename", p.given_names)
        _put(o, "present-family-name", p.family_name)
        _put(o, "alias", list(p.aliases))
        _put(o, "date-of-birth", p.born_on.isoformat() if p.born_on else None)
        _put(o, "nationality", list(p.nationalities))
        _put(o, "sex", _GENDER.get(str(p.sex)) if p.sex else None)
        if p.place_of_birth is not None:
            _put(o, "place-of-birth", _place_text(p.place_of_birth))
    return o


def _place_text(p: Place) -> str:
    return ", ".join(x for x in (p.locality, p.country) if x)


def _geolocation(what: str, p: Place) -> MISPObject:
    o = _obj("geolocation")
    _put(o, "countrycode", p.country)
    _put(o, "city", p.locality)
    if p.position is not None:
        _put(o, "latitude", p.position.lat)
        _put(o, "longitude", p.position.lon)
    _put(o, "text", what)
    return o


def _conveyance(v: Vehicle | Vessel | Aircraft) -> MISPObject:
    if isinstance(v, Vehicle):
        o = _obj("vehicle")
        _put(o, "license-plate-number", v.registration)
        _put(o, "make", v.make)
        _put(o, "model", v.model)
        _put(o, "exterior-color", v.colour)
        _put(o, "vin", v.vin)
        _put(o, "description", f"{v.ref}" + (f", registered in {v.registration_country}"
                                             if v.registration_country else ""))
        return o
    if isinstance(v, Vessel):
        o = _obj("ftm-Vessel")
        _put(o, "name", v.name or f"unnamed vessel {v.ref}")
        _put(o, "flag", v.flag or ("stateless" if v.stateless else None))
        _put(o, "imoNumber", v.imo)
        _put(o, "mmsi", v.mmsi)
        _put(o, "callSign", v.call_sign)
        _put(o, "type", str(v.vessel_type) if v.vessel_type else None)
        return o
    o = _obj("ftm-Airplane")
    _put(o, "registrationNumber", v.registration)
    _put(o, "country", v.registration_country)
    _put(o, "operator", v.operator)
    _put(o, "name", v.flight_number or v.registration or f"aircraft {v.ref}")
    return o


def _document(d: IdentityDocument) -> MISPObject:
    o = _obj("ftm-Passport")
    _put(o, "type", d.type)
    _put(o, "passportNumber", d.number)
    _put(o, "country", d.issuing_state)
    _put(o, "endDate", d.expires_on.isoformat() if d.expires_on else None)
    _put(o, "startDate", d.issued_on.isoformat() if d.issued_on else None)
    _put(o, "summary", f"status: {d.status}" + (f"; {d.findings.text}" if d.findings else ""))
    return o


def to_event(header: schemas.Header, body: schemas.Body,
             restrictions: schemas.Restrictions | None = None) -> MISPEvent:
    """The MISP event of one message under `restrictions` (default: the header's)."""
    r = restrictions if restrictions is not None else header.restrictions
    c = gather(body)
    ev = MISPEvent()
    ev.info = f"{c.kind.replace('_', ' ')}: {c.title}"
    ev.date = header.created_at.date()
    ev.threat_level_id = _THREAT_LEVEL[Urgency(header.urgency)]
    ev.analysis = 2  # completed: the originator sent it as finished intelligence
    ev.distribution = tg.misp_distribution(header.level, r)
    for tag in tg.misp_tags(header.sender, header.id, header.level, r, header.evaluation):
        ev.add_tag(tag)
    ev.add_attribute("text", text_of(c), category="Other", distribution=5,
                     comment=f"narrative ({c.lang})")
    for cond in r.expanded().conditions:
        ev.add_attribute("text", cond.text, category="Other", distribution=5,
                         comment=f"{tg.CONDITION_COMMENT}:{cond.lang}")
    objects: list[MISPObject] = []
    if isinstance(body, schemas.Alert):
        colour = NOTICE_COLOUR[AlertType(body.type)]
        objects += [_notice(colour, body, p) for p in c.persons] or [
            _notice(colour, body, None)]
    objects += [_person(p) for p in c.persons]
    objects += [_conveyance(v) for v in c.conveyances]
    objects += [_document(d) for d in c.documents]
    for phone in c.phones:
        o = _obj("phone-number")
        _put(o, "phone-number", phone)
        objects.append(o)
    objects += [_geolocation(what, p) for what, p in c.places]
    for o in objects:
        o.distribution = 5  # inherit the event's: never wider than the event
        ev.add_object(o)
    return ev
