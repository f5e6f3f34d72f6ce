"""Building blocks shared by the body kinds: people, groups, routes, conveyances, documents.

Every field is a code where a code exists (ISO 3166-1 countries, ICAO 9303 document
types, ISO 639-1 languages); free text is a `Narrative` that names its language, so a
report written in Thai can be routed to a translator rather than guessed at.

Entities inside one report cite each other by `ref` (a short local id such as "P1"):
a group lists its members, a concealment its conveyance. Refs are local to the message.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import msgspec

from schemas.codes import (
    ConcealmentMethod,
    DocumentStatus,
    LegalBasisType,
    MethodAspect,
    PersonRole,
    PointRole,
    Sex,
    TransportMode,
    VesselType,
)

# Body codes are checked against the ISO sets in `schemas.code_rules` (every one, with its
# path), so the runtime Meta only bounds the length: a regex per code was the largest
# cost of decoding a report. The JSON Schema still carries the pattern.
CountryCode = Annotated[
    str, msgspec.Meta(min_length=2, max_length=2, extra_json_schema={"pattern": r"^[A-Z]{2}$"})
]
LangTag = Annotated[
    str,
    msgspec.Meta(
        min_length=2,
        max_length=35,
        extra_json_schema={"pattern": r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"},
    ),
]

# The commonest short codes of a body are checked by the body rules
# (`schemas.entity_rules`, rule `pattern`, length included): a charset test
# (`schemas.code_rules.SHAPES`) instead of msgspec's regex per string, which was the
# largest cost of decoding a report after the country codes. The JSON Schema carries
# the pattern, in the ECMA-262 form; the structural walk applies it too.
REF_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
PHONE_PATTERN = r"^\+[1-9][0-9]{6,14}$"  # E.164
CURRENCY_PATTERN = r"^[A-Z]{3}$"  # ISO 4217
REGISTRATION_PATTERN = r"^[A-Z0-9 -]{1,15}$"  # a vehicle's plate

# Short identifiers and labels; long free text goes in a Narrative with a language.
Ref = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": REF_PATTERN})]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
# ICAO 9303: P passport, I/A/C identity cards (TD1/TD2), V visa; the second character is
# at the issuer's discretion ("PD" diplomatic, "PS" service, "AC" crew member certificate).
DocTypeCode = Annotated[str, msgspec.Meta(pattern=r"^[ACIPV][A-Z]?\Z")]
DocNumber = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9<-]{1,20}\Z")]
ImoNumber = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{7}\Z")]  # check digit: semantic
Mmsi = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{9}\Z")]
Phone = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": PHONE_PATTERN})]
CurrencyCode = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": CURRENCY_PATTERN})]
Registration = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": REGISTRATION_PATTERN})]
Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
Count = Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
# Body timestamps must carry an offset: a naive time is ambiguous across the federation.
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]


class Narrative(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]
    lang: LangTag


class _Part(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """Common struct configuration: refuse unknown fields, immutable, compact on the wire."""


class Position(_Part, frozen=True):
    lat: Latitude
    lon: Longitude


class Place(_Part, frozen=True):
    country: CountryCode
    locality: Name | None = None  # city, port, border crossing, as locals spell it
    position: Position | None = None


class Address(_Part, frozen=True):
    country: CountryCode
    lines: list[Name] = []
    locality: Name | None = None
    postcode: Annotated[str, msgspec.Meta(max_length=20)] | None = None


class Money(_Part, frozen=True):
    amount: Annotated[float, msgspec.Meta(ge=0)]
    currency: CurrencyCode


class Period(_Part, frozen=True):
    start: date | None = None
    end: date | None = None


class IdentityDocument(_Part, frozen=True):
    """A travel or identity document, as seen or as reported."""

    type: DocTypeCode
    issuing_state: CountryCode
    status: DocumentStatus = DocumentStatus.UNKNOWN
    number: DocNumber | None = None
    nationality: CountryCode | None = None  # as printed, which may be false
    name_on_document: Name | None = None
    issued_on: date | None = None
    expires_on: date | None = None
    blank: bool = False  # a stolen blank has no holder (art. 10(1)(c))
    findings: Narrative | None = None  # how the fraud shows, and how to detect it (10(1)(d))


class Person(_Part, frozen=True):
    ref: Ref
    roles: Annotated[list[PersonRole], msgspec.Meta(min_length=1)]
    family_name: Name | None = None
    given_names: Name | None = None
    aliases: list[Name] = []
    sex: Sex | None = None
    born_on: date | None = None
    birth_year: Annotated[int, msgspec.Meta(ge=1900, le=2100)] | None = None
    place_of_birth: Place | None = None
    minor: bool | None = None  # children are owed special protection (TIP Protocol art. 3(c))
    nationalities: list[CountryCode] = []
    documents: list[IdentityDocument] = []
    phones: list[Phone] = []
    addresses: list[Address] = []
    last_known_location: Place | None = None
    description: Narrative | None = None


class Group(_Part, frozen=True):
    """An organized criminal group or network (art. 10(1)(b))."""

    ref: Ref
    name: Name | None = None
    aliases: list[Name] = []
    members: list[Ref] = []  # refs of persons in the same message
    active_in: list[CountryCode] = []
    estimated_size: Count | None = None
    methods: Narrative | None = None


class RoutePoint(_Part, frozen=True):
    role: PointRole
    place: Place
    mode_onward: TransportMode | None = None  # how people leave this point


class Route(_Part, frozen=True):
    """Embarkation, transit and destination points (art. 10(1)(a)), in travel order."""

    ref: Ref
    points: Annotated[list[RoutePoint], msgspec.Meta(min_length=2)]
    mode: TransportMode = TransportMode.MIXED
    period: Period | None = None
    fee_per_person: Money | None = None
    groups: list[Ref] = []  # groups known to operate it


class Vehicle(_Part, frozen=True, tag="vehicle", tag_field="type"):
    ref: Ref
    registration: Registration | None = None
    registration_country: CountryCode | None = None
    make: Name | None = None
    model: Name | None = None
    colour: Name | None = None
    vin: Annotated[str, msgspec.Meta(pattern=r"^[A-HJ-NPR-Z0-9]{17}\Z")] | None = None
    operator: Name | None = None


class Vessel(_Part, frozen=True, tag="vessel", tag_field="type"):
    """A vessel has a flag State or is declared stateless (art. 8(7)), never both."""

    ref: Ref
    name: Name | None = None
    flag: CountryCode | None = None
    stateless: bool = False
    imo: ImoNumber | None = None
    mmsi: Mmsi | None = None
    call_sign: Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]{3,10}\Z")] | None = None
    vessel_type: VesselType | None = None
    length_m: Annotated[float, msgspec.Meta(gt=0, le=500)] | None = None
    home_port: Place | None = None
    operator: Name | None = None


class Aircraft(_Part, frozen=True, tag="aircraft", tag_field="type"):
    ref: Ref
    registration: Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9-]{2,10}\Z")] | None = None
    registration_country: CountryCode | None = None
    operator: Name | None = None
    flight_number: (
        Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]{2,3}[0-9]{1,4}[A-Z]?\Z")] | None
    ) = None


# Carriers and means of transportation (art. 10(1)(a)).
Conveyance = Vehicle | Vessel | Aircraft


class Concealment(_Part, frozen=True):
    """Means and methods of concealment, and ways of detecting them (art. 10(1)(d))."""

    method: ConcealmentMethod
    conveyance: Ref | None = None
    description: Narrative | None = None
    detection: Narrative | None = None


class MethodNote(_Part, frozen=True):
    """One facet of a modus operandi (art. 10(1)(b))."""

    aspect: MethodAspect
    description: Narrative


class LegislationNote(_Part, frozen=True):
    """Legislative experience, practice or measure (art. 10(1)(e))."""

    country: CountryCode
    summary: Narrative
    instrument: Label | None = None  # the law or regulation, as cited at home


class TechnicalNote(_Part, frozen=True):
    """Scientific and technological information useful to law enforcement (10(1)(f))."""

    topic: Label
    summary: Narrative


class LegalBasis(_Part, frozen=True):
    type: LegalBasisType
    instrument: Label | None = None  # required for treaties and conventions (semantic)


class Authority(_Part, frozen=True):
    """An office or authority: who asks, who investigates, who to call."""

    name: Name
    country: CountryCode
    function: Label | None = None
    contact: Label | None = None  # desk, phone or mail, "unless inappropriate" (6.8)


class LegalProvision(_Part, frozen=True):
    """An offence as the requesting State's law defines it, with its penalty."""

    citation: Label
    excerpt: Narrative | None = None
    max_penalty: Label | None = None


class Channel(_Part, frozen=True):
    """Another channel the same request went through (toolkit 6.6 and 6.8)."""

    channel: Label
    sent_at: Timestamp | None = None
