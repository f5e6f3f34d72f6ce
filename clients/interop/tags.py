"""orcon's restrictions as MISP tags, distribution and condition attributes.

Both directions live here so export and import cannot drift apart: `misp_tags` writes
the tags (the `tlp`, `PAP` and `admiralty-scale` taxonomies and the orcon machine-tag
taxonomy, `taxonomy()`, shipped as schemas/misp/orcon/machinetag.json), `read_tags`
reads anyone's tags back, fail-closed (`markings.tighten`; an unknown tag in a marking
taxonomy makes the result most restrictive), and `misp_distribution` is the widest
distribution the restrictions allow.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec

from clients.interop.markings import (
    MOST_RESTRICTIVE,
    conditions_of,
    handling_codes,
    statement,
    stricter_level,
    tighten,
)
from schemas.codes import TLP, TLP_RANK, InfoAccuracy, Level, Purpose, SourceReliability
from schemas.header import Evaluation
from schemas.restrictions import Condition, PartyName, Restrictions

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
