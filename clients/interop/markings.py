"""orcon's restrictions as STIX 2.1 markings, and the algebra every importer uses.

- TLP 2.0 as the marking definitions OASIS publishes (fixed ids); the full orcon
  restrictions as a marking whose property extension (`OrconMarking`) is defined by the
  orcon extension definition `EXTENSION_ID` (JSON Schema generated from the Struct,
  `extension_schema()`, published in schemas/stix/); a human-readable `statement`.
- Reading back is fail-closed: `tighten` only ever narrows, a marking that cannot be read
  becomes `MOST_RESTRICTIVE`, and two markings that leave no common purpose or recipient
  raise `MarkingConflict` naming the field (an empty list would mean "unrestricted").

The MISP side (tags, taxonomy, distribution) is `clients.interop.tags`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from schemas.codes import TLP, TLP_RANK, Level, Purpose
from schemas.header import MessageId
from schemas.jsonschema_export import portable
from schemas.restrictions import Condition, PartyName, Restrictions

# The orcon extension definition (a fixed id, like every published STIX extension) and
# the identity that publishes it.
EXTENSION_ID = "extension-definition--70324a12-c6a4-4a86-88ce-d400a923f04d"
ORCON_IDENTITY_ID = "identity--1b4ede1a-9a2b-4187-a86c-cccfe2ddf57e"
EXTENSION_CREATED = "2026-12-02T00:00:00.000Z"
EXTENSION_VERSION = "1.0.0"
EXTENSION_SCHEMA_PATH = f"schemas/stix/{EXTENSION_ID}.json"

# TLP 2.0 marking definitions as OASIS publishes them (cti-stix-common-objects,
# extension-definition-specifications/tlp-2.0): fixed ids, one extension, one created.
TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_CREATED = "2022-10-01T00:00:00.000Z"
TLP_MARKING_IDS: dict[TLP, str] = {
    TLP.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    TLP.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    TLP.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    TLP.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    TLP.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
# STIX 2.1's predefined TLP 1.0 markings, read on import (WHITE is CLEAR).
TLP1_MARKING_IDS: dict[str, TLP] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": TLP.CLEAR,
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": TLP.GREEN,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": TLP.AMBER,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": TLP.RED,
}
TLP_BY_MARKING_ID: dict[str, TLP] = {v: k for k, v in TLP_MARKING_IDS.items()} | TLP1_MARKING_IDS

# The orcon statement marking starts with this, so an importer tells it (a rendering of
# the extension marking beside it) from a foreign statement it must honour as a condition.
STATEMENT_PREFIX = "orcon restrictions"
# The orcon marking's name is an orcon machine tag, so MISP converters that turn a
# marking's name into a tag (misp-stix) produce a tag of the orcon taxonomy.
MARKING_NAME = "orcon:restrictions"

Handling = Literal["H0", "H1", "H2", "H3"]


class OrconMarking(msgspec.Struct, forbid_unknown_fields=True, frozen=True,
                   omit_defaults=True, kw_only=True):
    """The orcon marking's property extension: the originator's restrictions, field by
    field, as orcon enforces them. `handling` repeats the flags as Europol's codes
    (H0 purposes named, H1 no evidential use, H2 no onward dissemination, H3 other
    conditions) for readers that know SIENA and not orcon; it must agree with them."""

    extension_type: Literal["property-extension"]
    originator: PartyName
    message_id: MessageId
    level: Level
    handling: list[Handling] = []
    purposes: list[Purpose] = []
    release_to: list[PartyName] = []
    exclude: list[PartyName] = []
    not_before: datetime | None = None
    expires_at: datetime | None = None
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=36500)] | None = None
    no_public_disclosure: bool = False
    not_to_suspects: bool = False
    consult_before_action: bool = False
    conditions: list[Condition] = []
    tlp: TLP | None = None


class MarkingConflict(ValueError):
    """Two markings leave nothing permitted in a field where empty means unrestricted."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


# What an unreadable marking becomes: every flag on, TLP:RED. Purposes and release_to
# stay as they were (empty means unrestricted, so "nothing" cannot be written); the
# officer reviewing the draft sees `unknown_markings` and TLP:RED.
MOST_RESTRICTIVE = Restrictions(
    no_evidential_use=True, no_onward_dissemination=True, no_public_disclosure=True,
    not_to_suspects=True, consult_before_action=True, tlp=TLP.RED)


CONDITION_MAX = 2000  # schemas.restrictions.Condition.text


def conditions_of(text: str, lang: str = "und") -> list[Condition]:
    """A condition text as orcon Conditions, cut in pieces orcon can carry: a long
    foreign condition is kept whole, never shortened."""
    text = text.strip()
    return [Condition(text=text[i:i + CONDITION_MAX], lang=lang)
            for i in range(0, len(text), CONDITION_MAX)]


def handling_codes(r: Restrictions) -> list[Handling]:
    r = r.expanded()
    out: list[Handling] = []
    if r.purposes:
        out.append("H0")
    if r.no_evidential_use:
        out.append("H1")
    if r.no_onward_dissemination:
        out.append("H2")
    if r.conditions:
        out.append("H3")
    return out


def to_marking(originator: str, message_id: str, level: Level,
               r: Restrictions) -> OrconMarking:
    """The extension properties for restrictions `r` (TLP presets applied, so a reader
    that ignores TLP still sees every flag it implies)."""
    e = r.expanded()
    return OrconMarking(
        extension_type="property-extension", originator=originator, message_id=message_id,
        level=level, handling=handling_codes(e), purposes=list(e.purposes),
        release_to=list(e.release_to), exclude=list(e.exclude), not_before=e.not_before,
        expires_at=e.expires_at, retention_days=e.destroy_after_days,
        no_public_disclosure=e.no_public_disclosure, not_to_suspects=e.not_to_suspects,
        consult_before_action=e.consult_before_action, conditions=list(e.conditions),
        tlp=e.tlp)


def from_marking(m: OrconMarking) -> Restrictions:
    """Restrictions from the extension. Handling codes and flags are OR-ed (either one
    set means set); a code that names what the marking does not carry (H0 without
    purposes, H3 without conditions) makes it unreadable: `MarkingConflict`."""
    h = set(m.handling)
    if "H0" in h and not m.purposes:
        raise MarkingConflict("handling", "H0 (purposes named) without any purpose")
    if "H3" in h and not m.conditions:
        raise MarkingConflict("handling", "H3 (conditions) without any condition")
    return Restrictions(
        purposes=list(m.purposes), no_evidential_use="H1" in h,
        no_onward_dissemination="H2" in h, release_to=list(m.release_to),
        exclude=list(m.exclude), not_before=m.not_before, expires_at=m.expires_at,
        destroy_after_days=m.retention_days, no_public_disclosure=m.no_public_disclosure,
        not_to_suspects=m.not_to_suspects, consult_before_action=m.consult_before_action,
        conditions=list(m.conditions), tlp=m.tlp)


def _stricter_tlp(a: TLP | None, b: TLP | None) -> TLP | None:
    if a is None or b is None:
        return a or b
    return a if TLP_RANK[TLP(a)] >= TLP_RANK[TLP(b)] else b


def _narrow(field: str, a: list[Any], b: list[Any]) -> list[Any]:
    """Allow-lists: empty is "unrestricted", so two lists narrow to their intersection,
    and an empty intersection is a conflict rather than a silent "anything"."""
    if not a or not b:
        return list(a or b)
    both = [x for x in a if x in b]
    if not both:
        raise MarkingConflict(field, f"the markings permit {sorted(map(str, a))} and "
                              f"{sorted(map(str, b))}: nothing in common")
    return both


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a is not None and b is not None else a or b


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a is not None and b is not None else a or b


def tighten(a: Restrictions, b: Restrictions) -> Restrictions:
    """The restrictions that honour both `a` and `b`: never looser than either."""
    a, b = a.expanded(), b.expanded()
    days = [d for d in (a.destroy_after_days, b.destroy_after_days) if d is not None]
    return Restrictions(
        purposes=_narrow("purposes", a.purposes, b.purposes),
        no_evidential_use=a.no_evidential_use or b.no_evidential_use,
        no_onward_dissemination=a.no_onward_dissemination or b.no_onward_dissemination,
        release_to=_narrow("release_to", a.release_to, b.release_to),
        exclude=list(dict.fromkeys([*a.exclude, *b.exclude])),
        not_before=_latest(a.not_before, b.not_before),
        expires_at=_earliest(a.expires_at, b.expires_at),
        destroy_after_days=min(days) if days else None,
        no_public_disclosure=a.no_public_disclosure or b.no_public_disclosure,
        not_to_suspects=a.not_to_suspects or b.not_to_suspects,
        consult_before_action=a.consult_before_action or b.consult_before_action,
        conditions=list(dict.fromkeys([*a.conditions, *b.conditions])),
        tlp=_stricter_tlp(a.tlp, b.tlp))


def stricter_level(a: Level, b: Level) -> Level:
    return a if a.rank >= b.rank else b


def statement(originator: str, level: Level, r: Restrictions) -> str:
    """The restrictions in one paragraph for a person reading the STIX bundle. Lists are
    sorted, so the same restrictions always give the same text (importers compare it)."""
    e = r.expanded()
    parts = [f"{STATEMENT_PREFIX} set by {originator} (orcon; machine-readable in the "
             f"marking extension {EXTENSION_ID}). Level {level}."]
    if e.tlp is not None:
        parts.append(f"TLP:{e.tlp}.")
    if e.purposes:
        parts.append("H0: use only for " + ", ".join(sorted(map(str, e.purposes))) + ".")
    if e.no_evidential_use:
        parts.append("H1: not as evidence without the originator's consent.")
    if e.no_onward_dissemination:
        parts.append("H2: no onward dissemination without the originator's consent.")
    for c in sorted(e.conditions, key=lambda c: (c.text, c.lang)):
        parts.append(f"H3 ({c.lang}): {c.text}")
    if e.release_to:
        parts.append("Release only to " + ", ".join(sorted(e.release_to)) + ".")
    if e.exclude:
        parts.append("Never to " + ", ".join(sorted(e.exclude)) + ".")
    if e.no_public_disclosure:
        parts.append("No public disclosure.")
    if e.not_to_suspects:
        parts.append("Never to be disclosed to suspects.")
    if e.consult_before_action:
        parts.append("Consult the originator before any executive action.")
    if e.not_before is not None:
        parts.append(f"Not to be used before {e.not_before.isoformat()}.")
    if e.expires_at is not None:
        parts.append(f"Expires at {e.expires_at.isoformat()}.")
    if e.destroy_after_days is not None:
        parts.append(f"Destroy {e.destroy_after_days} days after receipt.")
    return " ".join(parts)


def extension_schema() -> dict[str, Any]:
    """The JSON Schema of the orcon marking extension, in the shape stix2-validator
    applies to an object carrying the extension (the IEP 2.0 marking's precedent),
    generated from `OrconMarking`."""
    defs_schema = portable(msgspec.json.schema(OrconMarking))
    defs = defs_schema.get("$defs", {})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{EXTENSION_ID}.json",
        "title": "orcon-restrictions-marking-definition-extension",
        "description": "The orcon marking extension: the originator's use restrictions "
                       "(Article 10(2) of the Smuggling of Migrants Protocol) on a STIX "
                       "2.1 marking-definition, as orcon enforces them.",
        "type": "object",
        "properties": {
            "type": {"const": "marking-definition"},
            "extensions": {
                "type": "object",
                "properties": {EXTENSION_ID: {"$ref": "#/$defs/OrconMarking"}},
                "required": [EXTENSION_ID],
            },
        },
        "required": ["type", "extensions"],
        "$defs": defs,
    }
