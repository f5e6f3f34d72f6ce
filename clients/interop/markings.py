"""orcon's restrictions as they travel outside orcon: STIX 2.1 markings and MISP tags.

Every mapping between `Restrictions` and the outside vocabularies lives here, in both
directions, so export and import cannot drift apart:

- STIX: TLP 2.0 as the marking definitions OASIS publishes (fixed ids); the full orcon
  restrictions as a marking whose property extension (`OrconMarking`) is defined by the
  orcon extension definition `EXTENSION_ID` (JSON Schema generated from the Struct, in
  schemas/stix/); a human-readable `statement` marking.
- MISP: tags from the `tlp`, `PAP` and `admiralty-scale` taxonomies, the orcon machine-tag
  taxonomy (`taxonomy()`, shipped as schemas/misp/orcon/machinetag.json), condition texts
  as `text` attributes, and the event's distribution (`misp_distribution`).

Reading back is fail-closed: `tighten` only ever narrows, a marking that cannot be read
becomes `MOST_RESTRICTIVE`, and two markings that leave no common purpose or recipient
raise `MarkingConflict` naming the field (an empty list would mean "unrestricted").
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from schemas.codes import TLP, InfoAccuracy, Level, Purpose, SourceReliability
from schemas.header import Evaluation, MessageId
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
TLP_RANK = {TLP.CLEAR: 0, TLP.GREEN: 1, TLP.AMBER: 2, TLP.AMBER_STRICT: 3, TLP.RED: 4}

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


# ---- MISP --------------------------------------------------------------------------------

TAXONOMY = "orcon"
# MISP distribution levels (MISP core format).
ORG_ONLY, COMMUNITY, CONNECTED, ALL = 0, 1, 2, 3

# Europol 4x4 onto the admiralty scale (6x6). A degrades to a, and back; "unreliable in
# most instances" is admiralty d; what cannot be assessed is f / 6.
_RELIABILITY_OUT = {SourceReliability.A: "a", SourceReliability.B: "b",
                    SourceReliability.C: "d", SourceReliability.X: "f"}
_RELIABILITY_IN = {"a": SourceReliability.A, "b": SourceReliability.B,
                   "c": SourceReliability.C, "d": SourceReliability.C,
                   "e": SourceReliability.C, "f": SourceReliability.X}
_ACCURACY_OUT = {InfoAccuracy.KNOWN_TRUE: "1", InfoAccuracy.KNOWN_PERSONALLY: "2",
                 InfoAccuracy.NOT_KNOWN_PERSONALLY: "3", InfoAccuracy.CANNOT_BE_ASSESSED: "6"}
_ACCURACY_IN = {"1": InfoAccuracy.KNOWN_TRUE, "2": InfoAccuracy.KNOWN_PERSONALLY,
                "3": InfoAccuracy.NOT_KNOWN_PERSONALLY, "4": InfoAccuracy.CANNOT_BE_ASSESSED,
                "5": InfoAccuracy.CANNOT_BE_ASSESSED, "6": InfoAccuracy.CANNOT_BE_ASSESSED}

_TLP_TAG = {TLP.CLEAR: "tlp:clear", TLP.GREEN: "tlp:green", TLP.AMBER: "tlp:amber",
            TLP.AMBER_STRICT: "tlp:amber+strict", TLP.RED: "tlp:red"}
_TLP_FROM_TAG = {v: k for k, v in _TLP_TAG.items()} | {"tlp:white": TLP.CLEAR}

# Flags without a value: orcon:<predicate>.
_FLAGS = ("no-public-disclosure", "not-to-suspects", "consult-before-action")
_MARKER = "restrictions"  # orcon:restrictions, the STIX marking's name: states nothing itself
# Predicates whose value is free (a party, a time, a number, an id).
_FREE = ("release-to", "exclude", "not-before", "expires-at", "retention-days",
         "originator", "message-id")
_HANDLING_TEXT = {
    "h0": "H0: use only for the purposes named in orcon:purpose",
    "h1": "H1: not to be used as evidence without the originator's consent",
    "h2": "H2: no onward dissemination without the originator's consent",
    "h3": "H3: other conditions apply (the event's orcon:condition attributes)",
}
# The comment of the text attribute carrying one condition (H3), then ":<lang>".
CONDITION_COMMENT = "orcon:condition"
# The taxonomy's uuid; its predicates' and entries' uuids derive from it (uuid5), so
# regenerating the taxonomy never changes them.
TAXONOMY_UUID = uuid.UUID("a6b16527-cfff-4e06-a3a7-4c7b3ec63188")


def _tag(predicate: str, value: str | None = None) -> str:
    return f'{TAXONOMY}:{predicate}' if value is None else f'{TAXONOMY}:{predicate}="{value}"'


def misp_tags(originator: str, message_id: str, level: Level, r: Restrictions,
              evaluation: Evaluation | None = None) -> list[str]:
    """Event tags for these restrictions: tlp, PAP, admiralty-scale and orcon."""
    e = r.expanded()
    tags: list[str] = []
    if e.tlp is not None:
        tags.append(_TLP_TAG[TLP(e.tlp)])
    # PAP (permissible actions): not_to_suspects forbids what the adversary could detect
    # (PAP:RED); consult_before_action allows passive cross-checks only (PAP:AMBER).
    if e.not_to_suspects:
        tags.append("PAP:RED")
    elif e.consult_before_action:
        tags.append("PAP:AMBER")
    if evaluation is not None:
        tags.append('admiralty-scale:source-reliability='
                    f'"{_RELIABILITY_OUT[SourceReliability(evaluation.source)]}"')
        tags.append('admiralty-scale:information-credibility='
                    f'"{_ACCURACY_OUT[InfoAccuracy(evaluation.accuracy)]}"')
    tags.append(_tag("originator", originator))
    tags.append(_tag("message-id", message_id))
    tags.append(_tag("level", str(level).lower()))
    tags += [_tag("handling", h.lower()) for h in handling_codes(e)]
    tags += [_tag("purpose", str(p)) for p in e.purposes]
    tags += [_tag("release-to", p) for p in e.release_to]
    tags += [_tag("exclude", p) for p in e.exclude]
    if e.not_before is not None:
        tags.append(_tag("not-before", e.not_before.isoformat()))
    if e.expires_at is not None:
        tags.append(_tag("expires-at", e.expires_at.isoformat()))
    if e.destroy_after_days is not None:
        tags.append(_tag("retention-days", str(e.destroy_after_days)))
    for flag, on in zip(_FLAGS, (e.no_public_disclosure, e.not_to_suspects,
                                 e.consult_before_action), strict=True):
        if on:
            tags.append(_tag(flag))
    return tags


def misp_distribution(level: Level, r: Restrictions) -> int:
    """The widest MISP distribution the restrictions allow. Anything that limits who
    may hold the information (H2, release_to, exclude, a level above UNCLASSIFIED,
    TLP AMBER and above) keeps the event in the exporting organisation; any other
    restriction keeps it in the community; only TLP:CLEAR with nothing else goes to all
    communities."""
    e = r.expanded()
    if (e.no_onward_dissemination or e.release_to or e.exclude or e.not_to_suspects
            or level.rank > Level.UNCLASSIFIED.rank
            or (e.tlp is not None and TLP_RANK[TLP(e.tlp)] >= TLP_RANK[TLP.AMBER])):
        return ORG_ONLY
    unrestricted = Restrictions(tlp=e.tlp)
    if e.tlp == TLP.CLEAR and e == unrestricted:
        return ALL
    return COMMUNITY


class TagReading(msgspec.Struct, kw_only=True):
    """What a set of MISP tags says (see `read_tags`)."""

    restrictions: Restrictions = Restrictions()
    level: Level | None = None
    evaluation: Evaluation | None = None
    originator: str | None = None
    message_id: str | None = None
    unknown: list[str] = []  # marking tags that could not be read: made most restrictive


def _split(tag: str) -> tuple[str, str, str | None]:
    """namespace, predicate, value of a machine tag. Accepts the value quoted or not
    (converters strip quotes) and any case in namespace and predicate."""
    ns, _, rest = tag.partition(":")
    pred, eq, value = rest.partition("=")
    v = value.strip().strip('"') if eq else None
    return ns.strip().lower(), pred.strip().lower(), v


# Namespaces whose tags restrict handling. A tag in one of them that is not understood is
# an unknown marking; tags in other namespaces classify content and are left alone.
MARKING_NAMESPACES = frozenset({"tlp", "pap", TAXONOMY, "statement", "iep", "iep2-policy",
                                "ais-marking", "de-vs", "nato", "euci", "classification",
                                "cssa"})


def read_tags(tags: Iterable[str], conditions: Iterable[Condition] = ()) -> TagReading:
    """Read the marking tags of a MISP event (ours or anyone's) back into restrictions.
    Every known tag tightens; an unknown tag in a marking namespace makes the result
    most restrictive and is listed in `unknown`."""
    out = TagReading()
    r = Restrictions(conditions=list(conditions))
    purposes: list[Purpose] = []
    release: list[str] = []
    handling: set[str] = set()
    rel = acc = None
    statements: list[str] = []
    for tag in tags:
        ns, pred, value = _split(tag)
        known = True
        if ns == "tlp":
            t = _TLP_FROM_TAG.get(f"tlp:{pred}")
            known = t is not None and value is None
            if t is not None:
                r = tighten(r, Restrictions(tlp=t))
        elif ns == "pap":
            if pred == "red":
                r = tighten(r, Restrictions(not_to_suspects=True, consult_before_action=True))
            elif pred == "amber":
                r = tighten(r, Restrictions(consult_before_action=True))
            else:
                known = pred in ("green", "clear", "white")
        elif ns == "admiralty-scale":
            if pred == "source-reliability" and value is not None:
                rel = _RELIABILITY_IN.get(value.lower())
            elif pred == "information-credibility" and value is not None:
                acc = _ACCURACY_IN.get(value)
        elif ns == TAXONOMY:
            known = _read_orcon(pred, value, out, handling, purposes, release)
            if known and pred in (*_FLAGS, "not-before", "expires-at", "retention-days",
                                  "exclude"):
                r = tighten(r, _orcon_field(pred, value))
        elif ns == "statement":
            statements.append(tag.partition(":")[2])
        elif ns in MARKING_NAMESPACES:
            known = False
        if not known:
            out.unknown.append(tag)
    if purposes:
        r = tighten(r, Restrictions(purposes=purposes))
    if release:
        r = tighten(r, Restrictions(release_to=release))
    flags = Restrictions(no_evidential_use="h1" in handling,
                         no_onward_dissemination="h2" in handling)
    r = tighten(r, flags)
    if ("h0" in handling and not purposes) or ("h3" in handling and not r.conditions):
        out.unknown.append(_tag("handling", "h0" if "h0" in handling and not purposes
                                else "h3"))
    # A statement is ours only if it is exactly what the tags read say (a converter may
    # have dropped quotes); any other statement is a condition we cannot interpret.
    ours = _clean(statement(out.originator or "", out.level or Level.UNCLASSIFIED, r))
    for text in statements:
        if _clean(text) != ours:
            out.unknown.append(f"statement:{text}")
            r = tighten(r, Restrictions(conditions=conditions_of(text)))
    if out.unknown:
        r = tighten(r, MOST_RESTRICTIVE)
        out.level = Level.SECRET
    if rel is not None and acc is not None:
        out.evaluation = Evaluation(rel, acc)
    out.restrictions = r
    return out


def _clean(text: str) -> str:
    return "".join(ch for ch in text if ch != '"' and ch >= " ").strip().lower()


def _orcon_field(pred: str, value: str | None) -> Restrictions:
    if pred == "no-public-disclosure":
        return Restrictions(no_public_disclosure=True)
    if pred == "not-to-suspects":
        return Restrictions(not_to_suspects=True)
    if pred == "consult-before-action":
        return Restrictions(consult_before_action=True)
    assert value is not None
    if pred == "exclude":
        return Restrictions(exclude=[value.upper()])
    if pred == "retention-days":
        return Restrictions(destroy_after_days=int(value))
    t = _parse_time(value)
    return Restrictions(not_before=t) if pred == "not-before" else Restrictions(expires_at=t)


def _parse_time(value: str) -> datetime:
    t = datetime.fromisoformat(value.upper())
    if t.tzinfo is None:
        raise ValueError(f"{value}: a time without an offset is ambiguous")
    return t


def _read_orcon(pred: str, value: str | None, out: TagReading, handling: set[str],
                purposes: list[Purpose], release: list[str]) -> bool:
    """One orcon tag into the accumulators; False when it cannot be read."""
    try:
        if pred in _FLAGS or pred == _MARKER:
            return value is None
        if value is None:
            return False
        if pred == "handling":
            if value.lower() not in _HANDLING_TEXT:
                return False
            handling.add(value.lower())
        elif pred == "purpose":
            purposes.append(Purpose(value.lower()))
        elif pred == "level":
            lvl = Level(value.upper())
            out.level = lvl if out.level is None else stricter_level(out.level, lvl)
        elif pred == "release-to":
            release.append(msgspec.convert(value.upper(), PartyName))
        elif pred == "exclude":
            msgspec.convert(value.upper(), PartyName)
        elif pred == "originator":
            out.originator = value.upper()
        elif pred == "message-id":
            out.message_id = value.upper()
        elif pred in ("not-before", "expires-at"):
            _parse_time(value)
        elif pred == "retention-days":
            if not 1 <= int(value) <= 36500:
                return False
        else:
            return False
    except (ValueError, msgspec.ValidationError):
        return False
    return True


def taxonomy() -> dict[str, Any]:
    """The orcon MISP taxonomy (machinetag.json), generated so it cannot drift from the
    tags `misp_tags` writes. Shipped as schemas/misp/orcon/machinetag.json."""
    pred_text = {
        "handling": "Europol handling codes the originator set (H0-H3)",
        "purpose": "a purpose the information may be used for (H0); only these",
        "level": "confidentiality level; recipients must be cleared for it",
        "release-to": "a country, agency or group the information may be released to; "
                      "only these",
        "exclude": "a country, agency or group that must never receive it",
        "not-before": "not to be used before this time (ISO 8601 with offset)",
        "expires-at": "not to be used after this time (ISO 8601 with offset)",
        "retention-days": "destroy this many days after receipt",
        "no-public-disclosure": "never to be disclosed publicly",
        "not-to-suspects": "never to be disclosed to suspects or their counsel",
        "consult-before-action": "consult the originator before any executive action",
        "originator": "the agency that set these restrictions",
        _MARKER: "the originator's orcon restrictions apply (the name of the orcon STIX "
                 "marking); the other orcon tags state them",
        "message-id": "the orcon message the information comes from",
    }
    def uid(name: str) -> str:
        return str(uuid.uuid5(TAXONOMY_UUID, name))

    entries = {
        "handling": list(_HANDLING_TEXT.items()),
        "purpose": [(str(p), str(p).replace("_", " ")) for p in Purpose],
        "level": [(str(lv).lower(), str(lv)) for lv in Level],
    }
    values = [{"predicate": pred, "entry": [
        {"value": v, "expanded": text, "uuid": uid(f"{pred}={v}")} for v, text in items]}
        for pred, items in entries.items()]
    return {
        "namespace": TAXONOMY,
        "description": "Use restrictions set by the originator of information shared "
                       "through orcon (Article 10(2) of the Smuggling of Migrants "
                       "Protocol), as machine tags: every tag present is a restriction "
                       "the holder must honour.",
        "version": 1,
        "uuid": str(TAXONOMY_UUID),
        "expanded": "orcon originator restrictions",
        "exclusive": False,
        "predicates": [{"value": k, "expanded": v, "uuid": uid(k),
                        "exclusive": k == "level"} for k, v in pred_text.items()],
        "values": values,
    }


def extension_schema() -> dict[str, Any]:
    """The JSON Schema of the orcon marking extension, in the shape stix2-validator
    applies to an object carrying the extension (the IEP 2.0 marking's precedent),
    generated from `OrconMarking`."""
    defs_schema = msgspec.json.schema(OrconMarking)
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
