"""Semantic validation: the rules a msgspec type cannot express.

Two layers, both reporting every failure with its full path and rule:

* `structural_errors(raw, type_, root)`: when msgspec refuses a document it stops at the
  first problem; this walks the undecoded document against the same Struct types and
  lists every missing, unknown or ill-typed field. It only runs on the failure path, so
  its cost never touches valid traffic.
* `validate_header` / `validate_body`: cross-field rules and code lists (ISO 3166-1,
  ISO 639-1, ICAO 9303) on decoded Structs. They run on every message, so they use
  precomputed sets and plain attribute access, no regex.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Union

import msgspec

from schemas.bodies import (
    Accused,
    Acknowledgment,
    AddressCheck,
    Alert,
    Body,
    ConsentDecision,
    ConsentRequest,
    Convicted,
    DocumentCheck,
    DocumentVerificationRequest,
    ExtraditionRequest,
    ForwardNotice,
    InformationRequest,
    IntelReport,
    MLARequest,
    NationalityVerificationRequest,
    PersonCheck,
    PurgeReceipt,
    Reply,
    UseDeclaration,
    VehicleCheck,
    VesselRequest,
    _Request,
)
from schemas.codes import (
    TLP,
    AlertType,
    AssistanceType,
    ConsentScope,
    Decision,
    Kind,
    LegalBasisType,
    PersonRole,
    PointRole,
    ReplyStatus,
    ResponseTerm,
    Urgency,
    VesselAsk,
)
from schemas.entities import (
    Address,
    Authority,
    Concealment,
    Conveyance,
    Group,
    IdentityDocument,
    LegalBasis,
    LegalProvision,
    MethodNote,
    Narrative,
    Person,
    Place,
    Route,
    Vessel,
)
from schemas.errors import FieldError, SchemaError
from schemas.header import Header
from schemas.iso import COUNTRIES, ISO639_1
from schemas.restrictions import Condition

__all__ = [
    "check_body",
    "check_header",
    "structural_errors",
    "validate_body",
    "validate_header",
]

_KINDS = frozenset(k.value for k in Kind)
_ICAO_FIRST = frozenset("ACIPV")
_Errors = list[FieldError]


# ---------------------------------------------------------------- code lists


def _country(code: str, path: str, errs: _Errors) -> None:
    if code not in COUNTRIES:
        errs.append(
            FieldError(
                path, "iso3166-alpha2", f"'{code}' is not an ISO 3166-1 alpha-2 country code"
            )
        )


def _countries(codes: Iterable[str], path: str, errs: _Errors) -> None:
    for i, code in enumerate(codes):
        if code not in COUNTRIES:
            _country(code, f"{path}[{i}]", errs)


_LANG_RE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")


def _lang(tag: str, path: str, errs: _Errors) -> None:
    if tag in ISO639_1:  # the common case: a bare two-letter code
        return
    # Body language tags are only length-bounded by type (see entities.LangTag).
    if _LANG_RE.fullmatch(tag) is None:
        errs.append(
            FieldError(path, "bcp47", f"'{tag}' is not a language tag such as 'en' or 'zh-Hant'")
        )
        return
    primary = tag.split("-", 1)[0]
    # Three-letter primaries are ISO 639-2/3 (Hmong "hmn", Shan "shn"): languages of the
    # Mekong routes that ISO 639-1 lacks; the pattern already bounds their shape.
    if len(primary) == 2 and primary not in ISO639_1:
        errs.append(FieldError(path, "iso639-1", f"'{primary}' is not an ISO 639-1 language code"))


def _narrative(n: Narrative | None, path: str, errs: _Errors) -> None:
    if n is not None and n.lang not in ISO639_1:
        _lang(n.lang, path + ".lang", errs)


def _conditions(conds: list[Condition], path: str, errs: _Errors) -> None:
    for i, c in enumerate(conds):
        _lang(c.lang, f"{path}[{i}].lang", errs)


def _aware(t: datetime | None, path: str, errs: _Errors) -> bool:
    if t is not None and t.tzinfo is None:
        errs.append(FieldError(path, "timezone", "the time must carry a UTC offset"))
        return False
    return True


def _order(first: date | None, then: date | None, path: str, what: str, errs: _Errors) -> None:
    if first is not None and then is not None and then < first:
        errs.append(FieldError(path, "date-order", f"{what}"))


# ---------------------------------------------------------------- entities


def _place(p: Place | None, path: str, errs: _Errors) -> None:
    if p is not None and p.country not in COUNTRIES:
        _country(p.country, path + ".country", errs)


def _address(a: Address, path: str, errs: _Errors) -> None:
    if a.country not in COUNTRIES:
        _country(a.country, path + ".country", errs)


def _document(d: IdentityDocument, path: str, errs: _Errors) -> None:
    if d.issuing_state not in COUNTRIES:
        _country(d.issuing_state, path + ".issuing_state", errs)
    if d.nationality is not None and d.nationality not in COUNTRIES:
        _country(d.nationality, path + ".nationality", errs)
    # ICAO 9303 parts 5 and 6 reserve "V" as second character of card codes for visas.
    if len(d.type) == 2 and d.type[0] in "ACI" and d.type[1] == "V":
        errs.append(
            FieldError(path + ".type", "icao9303", f"'{d.type}' is not an ICAO 9303 card code")
        )
    _order(d.issued_on, d.expires_on, path + ".expires_on", "expires_on is before issued_on", errs)
    _narrative(d.findings, path + ".findings", errs)


def _person(p: Person, path: str, errs: _Errors) -> None:
    if (
        p.family_name is None
        and p.given_names is None
        and not p.aliases
        and not p.documents
        and p.description is None
    ):
        errs.append(
            FieldError(
                path,
                "identifiable",
                "a person needs a name, an alias, a document or a description",
            )
        )
    if p.nationalities:
        _countries(p.nationalities, path + ".nationalities", errs)
    for i, d in enumerate(p.documents):
        _document(d, f"{path}.documents[{i}]", errs)
    for i, a in enumerate(p.addresses):
        _address(a, f"{path}.addresses[{i}]", errs)
    _place(p.place_of_birth, path + ".place_of_birth", errs)
    _place(p.last_known_location, path + ".last_known_location", errs)
    if p.born_on is not None and p.birth_year is not None and p.born_on.year != p.birth_year:
        errs.append(
            FieldError(path + ".birth_year", "birth-year", "birth_year contradicts born_on")
        )
    _narrative(p.description, path + ".description", errs)


def _persons(persons: list[Person], path: str, errs: _Errors) -> None:
    for i, p in enumerate(persons):
        _person(p, f"{path}[{i}]", errs)


def _vessel(v: Vessel, path: str, errs: _Errors) -> None:
    if v.flag is None and not v.stateless:
        errs.append(
            FieldError(
                path + ".flag", "vessel-flag", "a vessel needs a flag State or stateless: true"
            )
        )
    elif v.flag is not None and v.stateless:
        errs.append(
            FieldError(
                path + ".stateless", "vessel-flag", "a vessel with a flag cannot be stateless"
            )
        )
    elif v.flag is not None and v.flag not in COUNTRIES:
        _country(v.flag, path + ".flag", errs)
    if v.imo is not None and not imo_check_digit_ok(v.imo):
        errs.append(
            FieldError(path + ".imo", "imo-check-digit", f"IMO {v.imo} fails its check digit")
        )
    _place(v.home_port, path + ".home_port", errs)


def imo_check_digit_ok(imo: str) -> bool:
    """IMO ship numbers: the 7th digit is the last digit of 7*d1 + 6*d2 + ... + 2*d6."""
    return sum(int(imo[i]) * (7 - i) for i in range(6)) % 10 == int(imo[6])


def _conveyance(c: Conveyance, path: str, errs: _Errors) -> None:
    if isinstance(c, Vessel):
        _vessel(c, path, errs)
    elif c.registration_country is not None and c.registration_country not in COUNTRIES:
        _country(c.registration_country, path + ".registration_country", errs)


def _conveyances(cs: list[Conveyance], path: str, errs: _Errors) -> None:
    for i, c in enumerate(cs):
        _conveyance(c, f"{path}[{i}]", errs)


def _route(r: Route, path: str, errs: _Errors) -> None:
    last = len(r.points) - 1
    for i, pt in enumerate(r.points):
        p = f"{path}.points[{i}]"
        want = (
            PointRole.EMBARKATION
            if i == 0
            else PointRole.DESTINATION
            if i == last
            else PointRole.TRANSIT
        )
        if pt.role != want:
            errs.append(
                FieldError(
                    p + ".role",
                    "route-order",
                    "a route runs embarkation, then transit points, then destination;"
                    f" point {i} should be {want.value}",
                )
            )
        _place(pt.place, p + ".place", errs)
    if r.period is not None:
        _order(
            r.period.start, r.period.end, path + ".period.end", "period ends before it starts", errs
        )


def _group(g: Group, path: str, errs: _Errors) -> None:
    if g.active_in:
        _countries(g.active_in, path + ".active_in", errs)
    _narrative(g.methods, path + ".methods", errs)


def _methods(ms: list[MethodNote], path: str, errs: _Errors) -> None:
    for i, m in enumerate(ms):
        _narrative(m.description, f"{path}[{i}].description", errs)


def _concealment(cs: list[Concealment], path: str, errs: _Errors) -> None:
    for i, c in enumerate(cs):
        _narrative(c.description, f"{path}[{i}].description", errs)
        _narrative(c.detection, f"{path}[{i}].detection", errs)


def _refs(
    body: IntelReport | Alert,
    groups: list[Group],
    routes: list[Route],
    path: str,
    errs: _Errors,
) -> None:
    """Local refs are unique within a message, and every citation resolves."""
    persons = {p.ref for p in body.persons}
    convs = {c.ref for c in body.conveyances}
    all_groups = {g.ref for g in groups}
    n = len(body.persons) + len(groups) + len(routes) + len(body.conveyances)
    if len(persons) + len(convs) + len(all_groups) + len({r.ref for r in routes}) != n or (
        n > len(persons | convs | all_groups | {r.ref for r in routes})
    ):
        # Rare: only now spend time on the paths of the duplicates.
        seen: dict[str, str] = {}
        items = [(p.ref, f"{path}.persons[{i}].ref") for i, p in enumerate(body.persons)]
        items += [(g.ref, f"{path}.groups[{i}].ref") for i, g in enumerate(groups)]
        items += [(r.ref, f"{path}.routes[{i}].ref") for i, r in enumerate(routes)]
        items += [(c.ref, f"{path}.conveyances[{i}].ref") for i, c in enumerate(body.conveyances)]
        for ref, p in items:
            if ref in seen:
                errs.append(
                    FieldError(p, "ref-unique", f"ref '{ref}' is already used at {seen[ref]}")
                )
            else:
                seen[ref] = p
    for i, g in enumerate(groups):
        for j, m in enumerate(g.members):
            if m not in persons:
                errs.append(
                    FieldError(
                        f"{path}.groups[{i}].members[{j}]",
                        "ref-resolves",
                        f"no person has ref '{m}'",
                    )
                )
    for i, r in enumerate(routes):
        for j, gr in enumerate(r.groups):
            if gr not in all_groups:
                errs.append(
                    FieldError(
                        f"{path}.routes[{i}].groups[{j}]",
                        "ref-resolves",
                        f"no group has ref '{gr}'",
                    )
                )
    for i, c in enumerate(body.concealment):
        if c.conveyance is not None and c.conveyance not in convs:
            errs.append(
                FieldError(
                    f"{path}.concealment[{i}].conveyance",
                    "ref-resolves",
                    f"no conveyance has ref '{c.conveyance}'",
                )
            )


def _legal_basis(b: LegalBasis | None, path: str, errs: _Errors) -> None:
    if (
        b is not None
        and b.instrument is None
        and b.type
        in (
            LegalBasisType.BILATERAL_TREATY,
            LegalBasisType.MULTILATERAL_CONVENTION,
            LegalBasisType.REGIONAL_SCHEME,
        )
    ):
        errs.append(
            FieldError(
                path + ".instrument",
                "legal-basis",
                f"a {b.type.value} basis must name the instrument",
            )
        )


def _authority(a: Authority, path: str, errs: _Errors) -> None:
    if a.country not in COUNTRIES:
        _country(a.country, path + ".country", errs)


def _provisions(ps: list[LegalProvision], path: str, errs: _Errors) -> None:
    for i, p in enumerate(ps):
        _narrative(p.excerpt, f"{path}[{i}].excerpt", errs)


# ---------------------------------------------------------------- body kinds


def _intel_report(b: IntelReport, path: str, errs: _Errors) -> None:
    _narrative(b.narrative, path + ".narrative", errs)
    _persons(b.persons, path + ".persons", errs)
    for i, g in enumerate(b.groups):
        _group(g, f"{path}.groups[{i}]", errs)
    for i, r in enumerate(b.routes):
        _route(r, f"{path}.routes[{i}]", errs)
    _conveyances(b.conveyances, path + ".conveyances", errs)
    for i, d in enumerate(b.documents):
        _document(d, f"{path}.documents[{i}]", errs)
    _concealment(b.concealment, path + ".concealment", errs)
    _methods(b.modus_operandi, path + ".modus_operandi", errs)
    for i, ln in enumerate(b.legislation):
        if ln.country not in COUNTRIES:
            _country(ln.country, f"{path}.legislation[{i}].country", errs)
        _narrative(ln.summary, f"{path}.legislation[{i}].summary", errs)
    for i, t in enumerate(b.technical):
        _narrative(t.summary, f"{path}.technical[{i}].summary", errs)
    _order(
        b.observed_from,
        b.observed_to,
        path + ".observed_to",
        "observed_to is before observed_from",
        errs,
    )
    _refs(b, b.groups, b.routes, path, errs)


_NEEDS_PERSON = frozenset(
    {
        AlertType.ARREST_SOUGHT,
        AlertType.PERSON_INFORMATION,
        AlertType.REPEAT_OFFENDER_WARNING,
        AlertType.MISSING_PERSON,
        AlertType.UNIDENTIFIED_PERSON,
    }
)


def _alert(b: Alert, path: str, errs: _Errors, header: Header | None) -> None:
    _narrative(b.narrative, path + ".narrative", errs)
    _persons(b.persons, path + ".persons", errs)
    for i, d in enumerate(b.documents):
        _document(d, f"{path}.documents[{i}]", errs)
    _conveyances(b.conveyances, path + ".conveyances", errs)
    _methods(b.modus_operandi, path + ".modus_operandi", errs)
    _concealment(b.concealment, path + ".concealment", errs)
    _narrative(b.action_requested, path + ".action_requested", errs)
    if b.type in _NEEDS_PERSON and not b.persons:
        errs.append(
            FieldError(path + ".persons", "alert-person", f"a {b.type.value} alert names a person")
        )
    if b.type is AlertType.ARREST_SOUGHT:
        if b.warrant is None:
            errs.append(
                FieldError(
                    path + ".warrant", "alert-warrant", "an arrest_sought alert rests on a warrant"
                )
            )
        if b.persons and not any(PersonRole.SUSPECT in p.roles for p in b.persons):
            errs.append(
                FieldError(
                    path + ".persons", "alert-warrant", "an arrest_sought alert names a suspect"
                )
            )
    if b.type is AlertType.MODUS_OPERANDI and not (b.modus_operandi or b.concealment):
        errs.append(
            FieldError(
                path + ".modus_operandi",
                "alert-method",
                "a modus_operandi alert describes the method or the concealment",
            )
        )
    if (
        header is not None
        and b.valid_until is not None
        and header.created_at.tzinfo is not None
        and b.valid_until <= header.created_at
    ):
        errs.append(
            FieldError(
                path + ".valid_until", "after-created", "valid_until must be after created_at"
            )
        )
    _refs(b, [], [], path, errs)


def _request(b: _Request, path: str, errs: _Errors, header: Header | None) -> None:
    if b.response_term is ResponseTerm.BY_DATE and b.respond_by is None:
        errs.append(
            FieldError(path + ".respond_by", "deadline", "response_term by_date needs respond_by")
        )
    if (
        header is not None
        and b.respond_by is not None
        and header.created_at.tzinfo is not None
        and b.respond_by <= header.created_at
    ):
        errs.append(
            FieldError(path + ".respond_by", "deadline", "respond_by must be after created_at")
        )
    _narrative(b.deadline_reason, path + ".deadline_reason", errs)


def _information_request(b: InformationRequest, path: str, errs: _Errors) -> None:
    for i, c in enumerate(b.checks):
        p = f"{path}.checks[{i}]"
        if isinstance(c, PersonCheck):
            _person(c.person, p + ".person", errs)
        elif isinstance(c, VehicleCheck):
            _conveyance(c.vehicle, p + ".vehicle", errs)
        elif isinstance(c, AddressCheck):
            _address(c.address, p + ".address", errs)
        elif isinstance(c, DocumentCheck):
            _document(c.document, p + ".document", errs)
    _narrative(b.purpose, path + ".purpose", errs)
    _narrative(b.questions, path + ".questions", errs)


def _document_verification(b: DocumentVerificationRequest, path: str, errs: _Errors) -> None:
    for i, d in enumerate(b.documents):
        _document(d, f"{path}.documents[{i}]", errs)
    if b.holder is not None:
        _person(b.holder, path + ".holder", errs)
    _narrative(b.grounds, path + ".grounds", errs)


_RETURNEES = (PersonRole.SMUGGLED_MIGRANT, PersonRole.VICTIM)


def _nationality_verification(b: NationalityVerificationRequest, path: str, errs: _Errors) -> None:
    _person(b.person, path + ".person", errs)
    if not any(r in b.person.roles for r in _RETURNEES):
        errs.append(
            FieldError(
                path + ".person.roles",
                "returnee-role",
                "art. 18 verification concerns a smuggled migrant or a victim",
            )
        )
    if b.claimed_nationality is None and b.claimed_residence is None:
        errs.append(
            FieldError(
                path + ".claimed_nationality",
                "art-18-3",
                "name the claimed nationality or the country of permanent residence",
            )
        )
    for name in ("claimed_nationality", "claimed_residence"):
        code = getattr(b, name)
        if code is not None and code not in COUNTRIES:
            _country(code, f"{path}.{name}", errs)
    _narrative(b.grounds, path + ".grounds", errs)


def _vessel_request(b: VesselRequest, path: str, errs: _Errors) -> None:
    _vessel(b.vessel, path + ".vessel", errs)
    if b.vessel.stateless and any(a is not VesselAsk.ASSISTANCE for a in b.asks):
        errs.append(
            FieldError(
                path + ".asks",
                "stateless-vessel",
                "a stateless vessel has no flag State to confirm registry or authorize boarding"
                " (art. 8(7)); ask only for assistance",
            )
        )
    if len(set(b.asks)) != len(b.asks):
        errs.append(FieldError(path + ".asks", "unique", "asks must not repeat"))
    _narrative(b.grounds, path + ".grounds", errs)


def _mla_request(b: MLARequest, path: str, errs: _Errors) -> None:
    _authority(b.requesting_authority, path + ".requesting_authority", errs)
    _authority(b.conducting_authority, path + ".conducting_authority", errs)
    if b.facts is None and any(a is not AssistanceType.SERVICE_OF_DOCUMENTS for a in b.assistance):
        errs.append(
            FieldError(
                path + ".facts",
                "untoc-18-15-c",
                "UNTOC art. 18(15)(c): a summary of the relevant facts is required unless the"
                " request is only for service of judicial documents",
            )
        )
    for name in (
        "subject_matter",
        "facts",
        "assistance_description",
        "procedures",
        "purpose",
        "link_to_proceedings",
        "prior_contact",
        "confidentiality",
        "officials_present",
    ):
        _narrative(getattr(b, name), f"{path}.{name}", errs)
    _persons(b.persons, path + ".persons", errs)
    _legal_basis(b.legal_basis, path + ".legal_basis", errs)
    _provisions(b.offences, path + ".offences", errs)
    if b.translation_lang is not None:
        _lang(b.translation_lang, path + ".translation_lang", errs)


def _extradition_request(b: ExtraditionRequest, path: str, errs: _Errors) -> None:
    _person(b.person, path + ".person", errs)
    _narrative(b.facts_and_history, path + ".facts_and_history", errs)
    _narrative(b.limitation, path + ".limitation", errs)
    _provisions(b.provisions, path + ".provisions", errs)
    _legal_basis(b.legal_basis, path + ".legal_basis", errs)
    if b.requesting_authority is not None:
        _authority(b.requesting_authority, path + ".requesting_authority", errs)
    s = b.stage
    sp = path + ".stage"
    if isinstance(s, Accused):
        _narrative(s.identity_evidence, sp + ".identity_evidence", errs)
        _narrative(s.evidence_summary, sp + ".evidence_summary", errs)
        for i, o in enumerate(s.offences):
            op = f"{sp}.offences[{i}]"
            _narrative(o.acts, op + ".acts", errs)
            _place(o.place, op + ".place", errs)
            _order(
                o.committed_on,
                o.committed_until,
                op + ".committed_until",
                "committed_until is before committed_on",
                errs,
            )
    elif isinstance(s, Convicted):
        if s.sentence is None and not s.intention_to_impose_sentence:
            errs.append(
                FieldError(
                    sp + ".sentence",
                    "extradition-sentence",
                    "state the sentence, or affirm the intention to impose one",
                )
            )
        _provisions(s.offences, sp + ".offences", errs)
    if b.translation_lang is not None:
        _lang(b.translation_lang, path + ".translation_lang", errs)


def _reply(b: Reply, path: str, errs: _Errors, header: Header | None) -> None:
    if b.status in (ReplyStatus.DECLINED, ReplyStatus.POSTPONED) and b.reason is None:
        errs.append(
            FieldError(
                path + ".reason",
                "reply-reason",
                f"a {b.status.value} reply gives its reasons (UNTOC art. 18(23), (25))",
            )
        )
    if b.decision is Decision.GRANTED_WITH_CONDITIONS and not b.conditions:
        errs.append(
            FieldError(path + ".conditions", "conditions", "granted_with_conditions lists them")
        )
    _narrative(b.narrative, path + ".narrative", errs)
    _narrative(b.reason, path + ".reason", errs)
    _conditions(b.conditions, path + ".conditions", errs)
    _persons(b.persons, path + ".persons", errs)
    for i, d in enumerate(b.documents):
        _document(d, f"{path}.documents[{i}]", errs)
    _conveyances(b.conveyances, path + ".conveyances", errs)
    for i, pl in enumerate(b.places):
        _place(pl, f"{path}.places[{i}]", errs)
    if header is not None and header.in_reply_to is None:
        errs.append(
            FieldError("header.in_reply_to", "in-reply-to", "a reply names the message it answers")
        )


def _in_reply_to(answered: str, header: Header | None, errs: _Errors) -> None:
    if header is not None and header.in_reply_to != answered:
        errs.append(
            FieldError(
                "header.in_reply_to",
                "in-reply-to",
                f"in_reply_to must be {answered}, the message this body is about",
            )
        )


def _consent_request(b: ConsentRequest, path: str, errs: _Errors) -> None:
    if ConsentScope.ONWARD_DISSEMINATION in b.scopes and not b.recipients:
        errs.append(
            FieldError(
                path + ".recipients", "consent-scope", "onward_dissemination names recipients"
            )
        )
    if ConsentScope.OTHER_PURPOSE in b.scopes and not b.purposes:
        errs.append(FieldError(path + ".purposes", "consent-scope", "other_purpose names purposes"))
    _narrative(b.justification, path + ".justification", errs)


def _consent_decision(b: ConsentDecision, path: str, errs: _Errors) -> None:
    if b.decision is Decision.REFUSED and (b.scopes or b.conditions):
        errs.append(FieldError(path + ".scopes", "consent-decision", "a refusal grants no scope"))
    elif b.decision is not Decision.REFUSED and not b.scopes:
        errs.append(
            FieldError(path + ".scopes", "consent-decision", "a grant names the scopes it grants")
        )
    if b.decision is Decision.GRANTED_WITH_CONDITIONS and not b.conditions:
        errs.append(
            FieldError(path + ".conditions", "conditions", "granted_with_conditions lists them")
        )
    if b.decision is Decision.REFUSED and b.reason is None:
        errs.append(FieldError(path + ".reason", "consent-decision", "a refusal gives its reason"))
    _conditions(b.conditions, path + ".conditions", errs)
    _narrative(b.reason, path + ".reason", errs)


def check_body(body: Body, header: Header | None = None, root: str = "body") -> list[FieldError]:
    """Every semantic error of `body` (and of its agreement with `header`), in order."""
    errs: _Errors = []
    if isinstance(body, IntelReport):
        _intel_report(body, root, errs)
    elif isinstance(body, Alert):
        _alert(body, root, errs, header)
    elif isinstance(body, _Request):
        _request(body, root, errs, header)
        if isinstance(body, InformationRequest):
            _information_request(body, root, errs)
        elif isinstance(body, DocumentVerificationRequest):
            _document_verification(body, root, errs)
        elif isinstance(body, NationalityVerificationRequest):
            _nationality_verification(body, root, errs)
        elif isinstance(body, VesselRequest):
            _vessel_request(body, root, errs)
        elif isinstance(body, MLARequest):
            _mla_request(body, root, errs)
        elif isinstance(body, ExtraditionRequest):
            _extradition_request(body, root, errs)
    elif isinstance(body, Reply):
        _reply(body, root, errs, header)
    elif isinstance(body, Acknowledgment):
        _narrative(body.note, root + ".note", errs)
        _in_reply_to(body.message_id, header, errs)
    elif isinstance(body, ConsentRequest):
        _consent_request(body, root, errs)
        _in_reply_to(body.message_id, header, errs)
    elif isinstance(body, ConsentDecision):
        _consent_decision(body, root, errs)
        _in_reply_to(body.request, header, errs)
    elif isinstance(body, ForwardNotice | PurgeReceipt):
        _in_reply_to(body.message_id, header, errs)
    elif isinstance(body, UseDeclaration):
        _narrative(body.note, root + ".note", errs)
        _in_reply_to(body.message_id, header, errs)
    if header is not None:
        tag = type(body).__struct_config__.tag
        if header.kind != tag:
            errs.append(
                FieldError(
                    "header.kind",
                    "kind-matches-body",
                    f"header.kind '{header.kind}' does not match the body's kind '{tag}'",
                )
            )
    return errs


def validate_body(body: Body, header: Header | None = None) -> None:
    """Raise SchemaError listing every semantic error of `body` (and header agreement)."""
    errs = check_body(body, header)
    if errs:
        raise SchemaError(errs)


# ---------------------------------------------------------------- header


def check_header(header: Header) -> list[FieldError]:
    """Every semantic error of `header`, in order."""
    errors: _Errors = []
    r = header.restrictions
    created_ok = _aware(header.created_at, "header.created_at", errors)
    nb_ok = _aware(r.not_before, "header.restrictions.not_before", errors)
    ex_ok = _aware(r.expires_at, "header.restrictions.expires_at", errors)
    if r.expires_at is not None and created_ok and ex_ok and r.expires_at <= header.created_at:
        errors.append(
            FieldError(
                "header.restrictions.expires_at",
                "after-created",
                "expires_at must be after created_at",
            )
        )
    if (
        r.not_before is not None
        and r.expires_at is not None
        and nb_ok
        and ex_ok
        and r.expires_at <= r.not_before
    ):
        errors.append(
            FieldError(
                "header.restrictions.expires_at",
                "after-not-before",
                "expires_at must be after not_before",
            )
        )
    if r.release_to and r.exclude:
        overlap = sorted(set(r.release_to) & set(r.exclude))
        if overlap:
            errors.append(
                FieldError(
                    "header.restrictions.exclude",
                    "release-exclude-disjoint",
                    f"{', '.join(overlap)} cannot be both released to and excluded",
                )
            )
    if r.conditions:
        _conditions(r.conditions, "header.restrictions.conditions", errors)
    if r.tlp == TLP.RED and not header.recipients:
        errors.append(
            FieldError(
                "header.recipients",
                "tlp-red-recipients",
                "TLP:RED is for named recipients only: list them in recipients",
            )
        )
    if r.tlp == TLP.RED and header.audience:
        # An audience is expanded by the broker; RED never is (TLP 2.0: "for the eyes
        # and ears of individual recipients only").
        errors.append(
            FieldError(
                "header.audience",
                "tlp-red-audience",
                f"TLP:RED goes to named recipients only, not to an audience "
                f"({', '.join(header.audience)}): name each recipient instead",
            )
        )
    if header.recipients != sorted(set(header.recipients)):
        errors.append(
            FieldError("header.recipients", "sorted-unique", "recipients must be sorted and unique")
        )
    if header.kind not in _KINDS:
        errors.append(
            FieldError("header.kind", "kind", f"'{header.kind}' is not a known message kind")
        )
    if header.in_reply_to is not None and header.in_reply_to == header.id:
        errors.append(
            FieldError("header.in_reply_to", "self-reference", "a message cannot reply to itself")
        )
    if header.urgency == Urgency.URGENT and not header.urgency_reasons:
        errors.append(
            FieldError(
                "header.urgency_reasons",
                "urgency-reason",
                "an urgent message states which Tool 4.7 risk makes it urgent",
            )
        )
    if len(set(header.urgency_reasons)) != len(header.urgency_reasons):
        errors.append(FieldError("header.urgency_reasons", "unique", "reasons must not repeat"))
    t = header.topics
    if t.route_countries:
        _countries(t.route_countries, "header.topics.route_countries", errors)
    if t.nationalities:
        _countries(t.nationalities, "header.topics.nationalities", errors)
    for i, dt in enumerate(t.document_types):
        if dt[0] not in _ICAO_FIRST:
            errors.append(
                FieldError(
                    f"header.topics.document_types[{i}]",
                    "icao9303",
                    f"'{dt}' is not an ICAO 9303 document code (P, I, A, C or V first)",
                )
            )
    for i, lang in enumerate(header.languages):
        _lang(lang, f"header.languages[{i}]", errors)
    return errors


def validate_header(header: Header) -> None:
    """Semantic rules that a type cannot express. Raises SchemaError with every failure."""
    errors = check_header(header)
    if errors:
        raise SchemaError(errors)


# ---------------------------------------------------------------- structural, all errors

# Which legal text requires a field, so a missing one is explained in the law's words.
_REQUIRED_BY: dict[type[Any], dict[str, str]] = {
    MLARequest: {
        "requesting_authority": "UNTOC art. 18(15)(a)",
        "subject_matter": "UNTOC art. 18(15)(b)",
        "proceeding": "UNTOC art. 18(15)(b)",
        "conducting_authority": "UNTOC art. 18(15)(b)",
        "assistance": "UNTOC art. 18(15)(d)",
        "assistance_description": "UNTOC art. 18(15)(d)",
        "purpose": "UNTOC art. 18(15)(f)",
    },
    ExtraditionRequest: {
        "person": "toolkit 6.6: identity of the person sought",
        "facts_and_history": "toolkit 6.6: facts and procedural history",
        "provisions": "toolkit 6.6: legal provisions",
        "limitation": "toolkit 6.6: statute of limitations",
        "legal_basis": "toolkit 6.6: legal basis",
        "stage": "toolkit 6.6: accused or convicted documents",
    },
}


def _rule_of(message: str) -> str:
    m = message.lower()
    if "invalid enum value" in m:
        return "enum"
    if "regex" in m:
        return "pattern"
    if "length" in m:
        return "length"
    if "timezone" in m:
        return "timezone"
    if "expected `" in m and ("<=" in m or ">=" in m or "< " in m or "> " in m):
        return "range"
    if "expected `" in m:
        return "type"
    return "structure"


def _leaf(raw: object, tp: Any, path: str, errs: _Errors) -> None:
    try:
        msgspec.convert(raw, tp)
    except msgspec.ValidationError as exc:
        text = str(exc)
        sub = ""
        if " - at `$" in text:
            text, _, rest = text.partition(" - at `$")
            sub = rest.rstrip("`")
        errs.append(FieldError(path + sub, _rule_of(text), text))


def _struct_types(tp: Any) -> list[type[msgspec.Struct]]:
    return [a for a in typing.get_args(tp) if isinstance(a, type) and issubclass(a, msgspec.Struct)]


def structural_errors(raw: object, tp: Any, path: str) -> list[FieldError]:
    """Every structural error of the undecoded `raw` (msgpack/JSON objects) against `tp`."""
    errs: _Errors = []
    _walk(raw, tp, path, errs)
    return errs


def _walk(raw: object, tp: Any, path: str, errs: _Errors) -> None:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner, *metas = typing.get_args(tp)
        if typing.get_origin(inner) is list and isinstance(raw, list):
            for meta in metas:
                if isinstance(meta, msgspec.Meta):
                    lo, hi = meta.min_length, meta.max_length
                    if (lo is not None and len(raw) < lo) or (hi is not None and len(raw) > hi):
                        _leaf(raw, tp, path, errs)
                        return
            _walk(raw, inner, path, errs)
            return
        _leaf(raw, tp, path, errs)
        return
    if origin is list:
        if not isinstance(raw, list):
            _leaf(raw, tp, path, errs)
            return
        (item,) = typing.get_args(tp)
        for i, x in enumerate(raw):
            _walk(x, item, f"{path}[{i}]", errs)
        return
    if origin is Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if raw is None and type(None) in args:
            return
        structs = _struct_types(tp)
        if structs and isinstance(raw, dict):
            if len(structs) == 1:
                _walk(raw, structs[0], path, errs)
                return
            field = structs[0].__struct_config__.tag_field
            by_tag = {s.__struct_config__.tag: s for s in structs}
            tag = raw.get(field)
            if isinstance(tag, str) and tag in by_tag:
                _walk(raw, by_tag[tag], path, errs)
                return
            errs.append(
                FieldError(
                    f"{path}.{field}",
                    "tag",
                    f"`{field}` must be one of {', '.join(sorted(map(str, by_tag)))}",
                )
            )
            return
        _leaf(raw, tp, path, errs)
        return
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        if not isinstance(raw, dict):
            _leaf(raw, tp, path, errs)
            return
        config = tp.__struct_config__
        fields = msgspec.structs.fields(tp)
        known = {f.encode_name for f in fields}
        if config.tag_field is not None:
            known.add(config.tag_field)
            if raw.get(config.tag_field, config.tag) != config.tag:
                errs.append(
                    FieldError(
                        f"{path}.{config.tag_field}",
                        "tag",
                        f"`{config.tag_field}` must be '{config.tag}'",
                    )
                )
        for key in raw:
            if key not in known:
                errs.append(FieldError(f"{path}.{key}", "unknown-field", f"unknown field `{key}`"))
        law = _REQUIRED_BY.get(tp, {})
        for f in fields:
            if f.encode_name in raw:
                _walk(raw[f.encode_name], f.type, f"{path}.{f.encode_name}", errs)
            elif f.required:
                basis = law.get(f.name)
                errs.append(
                    FieldError(
                        f"{path}.{f.encode_name}",
                        "required",
                        f"missing required field `{f.encode_name}`"
                        + (f" ({basis})" if basis else ""),
                    )
                )
        return
    _leaf(raw, tp, path, errs)
