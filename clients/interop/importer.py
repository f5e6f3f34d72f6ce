"""STIX 2.1 bundles and MISP events into DRAFT orcon messages for an officer to review.

Nothing imported is sent: `from_stix` and `from_misp` return a `Draft` (header fields
and an intel_report body) that the officer checks, completes and sends. Its
restrictions start from none and every marking the source carries only tightens them
(`markings.tighten`); a marking that cannot be read (an unknown marking definition, a
foreign statement, an unknown tag in a marking taxonomy, a broken orcon extension)
makes them the most restrictive and raises the level to SECRET, and is listed in
`Draft.unknown_markings` so the officer sees why.

Input is validated before it is read: `stix2` parses the bundle, and what an import reads
is decoded into the Structs below (`StixBundle`, `MispEvent`), so a malformed file is an
`InteropImportError` naming the path, never a half-read draft.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

import msgspec

import schemas
from clients.interop import markings as mk
from clients.interop import tags as tg
from schemas.codes import Category, Level, PersonRole
from schemas.entities import Group, Narrative, Person
from schemas.header import Evaluation
from schemas.restrictions import Condition, Restrictions

DRAFT_VERSION = "orcon-draft/1"
_MAX_TITLE = 300
_MAX_TEXT = 100_000
_MAX_NAME = 200


def _names(values: list[Any], notes: list[str]) -> list[str]:
    return [_cut(str(v), _MAX_NAME, "an alias", notes) for v in values if str(v)]


class InteropImportError(ValueError):
    """The file is not a STIX 2.1 bundle / MISP event orcon can read; names the rule."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


class DraftSource(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    format: Literal["stix", "misp"]
    sha256: str  # of the file as read
    id: str | None = None  # bundle or event id
    originator: str | None = None  # the orcon originator its markings name, if any
    message_id: str | None = None  # the orcon message it was exported from, if any


class DraftHeader(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The header fields a draft proposes; recipients and audience are the officer's."""

    kind: Literal["intel_report"] = "intel_report"
    category: Category = Category.OTHER
    level: Level = Level.RESTRICTED
    restrictions: Restrictions = Restrictions()
    evaluation: Evaluation | None = None
    languages: list[str] = []


class Draft(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A draft orcon message: review, then send with `header` fields and `body`."""

    draft: Literal["orcon-draft/1"] = "orcon-draft/1"
    source: DraftSource
    header: DraftHeader
    body: schemas.IntelReport
    unknown_markings: list[str] = []
    notes: list[str] = []  # what was not imported, for the officer


def encode_draft(d: Draft) -> bytes:
    return msgspec.json.format(msgspec.json.encode(d), indent=2) + b"\n"


def decode_draft(data: bytes) -> Draft:
    return msgspec.json.decode(data, type=Draft)


def _load(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InteropImportError("file", f"not JSON ({what} expected): {exc}") from None


def _cut(text: str, limit: int, what: str, notes: list[str]) -> str:
    """Text shortened to what the schema carries, with a note: never silently."""
    if len(text) > limit:
        notes.append(f"{what} shortened from {len(text)} to {limit} characters; the full "
                     "text is in the source")
    return text[:limit]


def _title(text: str, notes: list[str]) -> str:
    return _cut(" ".join(text.split()) or "imported intelligence", _MAX_TITLE, "title", notes)


def _narrative(text: str, lang: str, notes: list[str], what: str = "narrative") -> Narrative:
    lang = lang if msgspec_lang_ok(lang) else "und"
    return Narrative(text=_cut(text.strip() or "(no description in the source)", _MAX_TEXT,
                               what, notes), lang=lang)


def msgspec_lang_ok(lang: str) -> bool:
    try:
        msgspec.convert(lang, schemas.restrictions.LangTag)
    except msgspec.ValidationError:
        return False
    return True


# ---- STIX ------------------------------------------------------------------------------


class StixGranularMarking(msgspec.Struct):
    marking_ref: str | None = None  # or a lang, which restricts nothing


class StixObject(msgspec.Struct):
    """The properties of a STIX object an import reads; others are ignored. Decoding into
    it is the validation: a property of the wrong shape is an error naming its path."""

    type: str
    id: str
    name: str | None = None
    description: str | None = None
    lang: str | None = None
    roles: list[str] = []
    identity_class: str | None = None
    threat_actor_types: list[str] = []
    aliases: list[str] = []
    relationship_type: str | None = None
    source_ref: str | None = None
    target_ref: str | None = None
    object_marking_refs: list[str] = []
    granular_markings: list[StixGranularMarking] = []
    definition_type: str | None = None
    definition: dict[str, Any] | None = None
    extensions: dict[str, Any] = {}


class StixBundle(msgspec.Struct):
    type: Literal["bundle"]
    id: str
    objects: list[StixObject] = []


def _stix_markings(objects: list[StixObject]) -> tuple[Restrictions, Level | None,
                                                        list[str], str | None, str | None]:
    defs = {o.id: o for o in objects if o.type == "marking-definition"}
    applied: list[str] = []
    for o in objects:
        for ref in [*o.object_marking_refs,
                    *(g.marking_ref for g in o.granular_markings if g.marking_ref)]:
            if ref not in applied:
                applied.append(ref)
    r = Restrictions()
    level: Level | None = None
    unknown: list[str] = []
    originator = message_id = None
    statements: list[tuple[str, str]] = []
    for ref in applied:
        tlp = mk.TLP_BY_MARKING_ID.get(ref)
        if tlp is not None:
            r = mk.tighten(r, Restrictions(tlp=tlp))
            continue
        m = defs.get(ref)
        if m is None:
            unknown.append(f"{ref} (referenced, not defined in the bundle)")
            continue
        if mk.EXTENSION_ID in m.extensions:
            try:
                om = msgspec.convert(m.extensions[mk.EXTENSION_ID], mk.OrconMarking,
                                     strict=False)
                r = mk.tighten(r, mk.from_marking(om))
            except (msgspec.ValidationError, mk.MarkingConflict) as exc:
                unknown.append(f"{ref} (orcon marking unreadable: {exc})")
                continue
            level = om.level if level is None else mk.stricter_level(level, om.level)
            originator, message_id = om.originator, om.message_id
            if len(m.extensions) > 1:
                unknown.append(f"{ref} (other extensions beside orcon's)")
        elif (m.definition_type == "statement" and m.definition is not None
              and isinstance(m.definition.get("statement"), str)):
            statements.append((ref, m.definition["statement"]))
        else:
            unknown.append(f"{ref} ({m.name or m.definition_type or 'marking'})")
    for ref, text in statements:
        ours = mk.statement(originator or "", level or Level.UNCLASSIFIED, r)
        if text != ours:
            unknown.append(f"{ref} (statement: {text[:200]})")
            r = mk.tighten(r, Restrictions(conditions=mk.conditions_of(text)))
    return r, level, unknown, originator, message_id


def _roles(values: list[str]) -> list[PersonRole]:
    out = []
    for v in values:
        try:
            out.append(PersonRole(v))
        except ValueError:
            continue
    return out


def from_stix(data: bytes) -> Draft:
    """A draft from a STIX 2.1 bundle (JSON bytes)."""
    import stix2
    import stix2.exceptions

    raw = _load(data, "a STIX 2.1 bundle")
    if not isinstance(raw, dict) or raw.get("type") != "bundle":
        raise InteropImportError("type", "a STIX 2.1 bundle has type 'bundle'")
    try:
        # Parsed for validation only: the library refuses malformed objects; the dicts
        # are read below so unknown extensions reach the marking rules, not an error.
        stix2.parse(raw, allow_custom=True)
    except (stix2.exceptions.STIXError, ValueError, KeyError, TypeError,
            AttributeError) as exc:  # the library's own errors, and what malformed dicts
        # make it raise on the way (a missing "type", a None where a dict belongs)
        raise InteropImportError("bundle", f"not valid STIX 2.1: {type(exc).__name__}: "
                                 f"{exc}") from None
    try:
        bundle = msgspec.convert(raw, StixBundle, strict=True)
    except msgspec.ValidationError as exc:
        raise InteropImportError("bundle", f"not readable: {exc}") from None
    objects = bundle.objects
    r, level, unknown, originator, message_id = _stix_markings(objects)
    reports = [o for o in objects if o.type == "report"]
    notes: list[str] = []
    if len(reports) > 1:
        notes.append(f"{len(reports)} reports in the bundle: the first is the draft's title "
                     "and narrative; all entities were gathered")
    report = reports[0] if reports else None
    title = (report.name if report else None) or "imported STIX bundle"
    text = (report.description if report else None) or ""
    lang = (report.lang if report else None) or "en"
    persons: list[Person] = []
    attributed = {o.target_ref for o in objects
                  if o.type == "relationship" and o.relationship_type == "attributed-to"
                  and (o.source_ref or "").startswith("threat-actor--")}
    refs = iter(range(1, 10_000))
    for o in objects:
        if o.type != "identity" or o.identity_class != "individual":
            continue
        roles = _roles(o.roles)
        if not roles and o.id in attributed:
            roles = [PersonRole.SUSPECT]
        if not roles:
            notes.append(f"individual {o.name!r} has no orcon role: left in the narrative")
            text += f"\n\nIndividual named in the source: {o.name}"
            continue
        name = _cut(o.name or "", _MAX_NAME, "a person's name", notes)
        persons.append(Person(
            ref=f"P{next(refs)}", roles=roles, family_name=name or None,
            description=_narrative(o.description, "en", notes, "a person's description")
            if o.description else None))
    groups = [Group(ref=f"G{next(refs)}",
                    name=_cut(o.name or "", _MAX_NAME, "a group's name", notes) or None,
                    aliases=_names(o.aliases, notes))
              for o in objects
              if o.type == "threat-actor" and "crime-syndicate" in o.threat_actor_types]
    body = schemas.IntelReport(title=_title(title, notes),
                               narrative=_narrative(text, lang, notes),
                               persons=persons, groups=groups)
    return _draft("stix", data, bundle.id, r, level, None, unknown, notes, body,
                  originator, message_id)


def _draft(fmt: Literal["stix", "misp"], data: bytes, source_id: str | None,
           r: Restrictions, level: Level | None, evaluation: Evaluation | None,
           unknown: list[str], notes: list[str], body: schemas.IntelReport,
           originator: str | None, message_id: str | None) -> Draft:
    if unknown:
        r = mk.tighten(r, mk.MOST_RESTRICTIVE)
        level = Level.SECRET
    header = DraftHeader(level=level or Level.RESTRICTED, restrictions=r,
                         evaluation=evaluation, languages=[body.narrative.lang]
                         if body.narrative.lang != "und" else [])
    return Draft(source=DraftSource(format=fmt, sha256=hashlib.sha256(data).hexdigest(),
                                    id=str(source_id) if source_id else None,
                                    originator=originator, message_id=message_id),
                 header=header, body=body, unknown_markings=unknown, notes=notes)


# ---- MISP ------------------------------------------------------------------------------

# MISP distribution as a marking: what it says about onward sharing.
_DISTRIBUTION = {0: Restrictions(no_onward_dissemination=True),
                 1: Restrictions(no_public_disclosure=True),
                 2: Restrictions(no_public_disclosure=True),
                 3: Restrictions(),
                 4: Restrictions(no_onward_dissemination=True)}


class MispTag(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1)]


class MispAttribute(msgspec.Struct):
    type: str
    value: str
    comment: str = ""
    object_relation: str | None = None
    Tag: list[MispTag] = []


class MispObject(msgspec.Struct):
    name: str
    Attribute: list[MispAttribute] = []


class MispEvent(msgspec.Struct):
    """The part of MISP's event JSON an import reads; other fields are ignored. Decoding
    into it is the validation: a field of the wrong shape is an error naming its path."""

    info: str = ""
    uuid: str | None = None
    distribution: int | None = None
    Tag: list[MispTag] = []
    Attribute: list[MispAttribute] = []
    Object: list[MispObject] = []


def from_misp(data: bytes) -> Draft:
    """A draft from a MISP event (JSON bytes, with or without the "Event" wrapper)."""
    raw = _load(data, "a MISP event")
    if isinstance(raw, dict) and "Event" in raw:
        raw = raw["Event"]
    if not isinstance(raw, dict):
        raise InteropImportError("event", "a MISP event is a JSON object")
    try:
        # strict=False: MISP writes numbers as strings ("distribution": "0")
        ev = msgspec.convert(raw, MispEvent, strict=False)
    except msgspec.ValidationError as exc:
        raise InteropImportError("event", f"not a MISP event: {exc}") from None
    tags = [t.name for t in ev.Tag]
    conditions: list[Condition] = []
    texts: list[str] = []
    notes: list[str] = []
    for a in ev.Attribute:
        tags += [t.name for t in a.Tag]
        if a.type == "text" and a.comment.startswith(tg.CONDITION_COMMENT + ":"):
            lang = a.comment.split(":", 2)[2] if a.comment.count(":") >= 2 else "und"
            conditions += mk.conditions_of(a.value, lang if msgspec_lang_ok(lang) else "und")
        elif a.type == "text":
            texts.append(a.value)
    for o in ev.Object:
        for a in o.Attribute:
            tags += [t.name for t in a.Tag]
    reading = tg.read_tags(tags, conditions)
    r = reading.restrictions
    unknown = list(reading.unknown)
    if ev.distribution is None:
        notes.append("no distribution in the event: read as 'your organisation only'")
    elif ev.distribution not in _DISTRIBUTION:
        raise InteropImportError("distribution", f"{ev.distribution!r} is not a MISP "
                                 f"distribution level (valid: {sorted(_DISTRIBUTION)})")
    r = mk.tighten(r, _DISTRIBUTION[ev.distribution or 0])
    persons = [p for p in (_misp_person(o, i, notes) for i, o in enumerate(ev.Object, 1))
               if p is not None]
    skipped = sorted({o.name for o in ev.Object if o.name not in ("person",
                                                                  "interpol-notice")})
    if skipped:
        notes.append("objects not imported as entities (review them in the source): "
                     + ", ".join(skipped))
    body = schemas.IntelReport(title=_title(ev.info or "imported MISP event", notes),
                               narrative=_narrative("\n\n".join(texts), "en", notes),
                               persons=persons)
    return _draft("misp", data, ev.uuid, r, reading.level, reading.evaluation, unknown,
                  notes, body, reading.originator, reading.message_id)


_ROLE_IN = {"suspect": PersonRole.SUSPECT, "accomplice": PersonRole.FACILITATOR,
            "culprit": PersonRole.SUSPECT, "accused": PersonRole.SUSPECT,
            "defendent": PersonRole.SUSPECT, "victim": PersonRole.VICTIM,
            "witness": PersonRole.WITNESS}


def _misp_person(o: MispObject, n: int, notes: list[str]) -> Person | None:
    if o.name not in ("person", "interpol-notice"):
        return None
    values: dict[str, list[str]] = {}
    for a in o.Attribute:
        values.setdefault(a.object_relation or "", []).append(a.value)

    def one(*keys: str) -> str | None:
        for k in keys:
            if values.get(k):
                return _cut(values[k][0], _MAX_NAME, f"{o.name}.{k}", notes)
        return None

    roles: list[PersonRole] = []
    for f in values.get("function", []):
        roles += _roles([x.strip() for x in f.split(",")])
    roles += [_ROLE_IN[v.lower()] for v in values.get("role", []) if v.lower() in _ROLE_IN]
    if o.name == "interpol-notice" and not roles and one("notice-color") == "Red":
        roles = [PersonRole.SUSPECT]  # a red notice seeks arrest
    if not roles:
        return None
    family = one("last-name", "present-family-name", "full-name")
    return Person(ref=f"M{n}", roles=list(dict.fromkeys(roles)), family_name=family,
                  given_names=one("first-name", "forename"),
                  aliases=_names(values.get("alias", []), notes))

