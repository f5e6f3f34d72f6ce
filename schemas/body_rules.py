"""The rules of each body kind, and `check_body` / `validate_body`: every semantic
error of a body, and of its agreement with the header it travels under (kind,
in_reply_to, deadlines after creation)."""

from __future__ import annotations

from schemas.bodies import (
    Accused,
    Acknowledgment,
    AddressCheck,
    Alert,
    Amendment,
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
    PhoneCheck,
    PurgeReceipt,
    Reply,
    UseDeclaration,
    VehicleCheck,
    VesselRequest,
    Withdrawal,
    _Request,
)
from schemas.code_rules import (
    Errors,
    conditions,
    country,
    lang,
    misshapen,
    narrative,
    order,
    phone_ok,
)
from schemas.codes import (
    AlertType,
    AssistanceType,
    ConsentScope,
    Decision,
    PersonRole,
    ReplyStatus,
    ResponseTerm,
    VesselAsk,
)
from schemas.entities import PHONE_PATTERN
from schemas.entity_rules import (
    address,
    authority,
    concealment,
    conveyance,
    conveyances,
    document,
    documents,
    group,
    legal_basis,
    methods,
    person,
    persons,
    place,
    provisions,
    refs,
    route,
    vessel,
)
from schemas.errors import FieldError, SchemaError
from schemas.header import Header
from schemas.iso import COUNTRIES, ISO639_1

__all__ = ["check_body", "validate_body"]


def _intel_report(b: IntelReport, path: str, errs: Errors) -> None:
    # The commonest kind: empty lists are skipped before a loop or a path is set up, and
    # the item rules build an item's path only for an error.
    if b.narrative.lang not in ISO639_1:
        narrative(b.narrative, path + ".narrative", errs)
    # The loops of persons() and the like, inlined: one call fewer per list.
    if b.persons:
        at = path + ".persons"
        for i, p in enumerate(b.persons):
            person(p, at, errs, i)
    if b.groups:
        at = path + ".groups"
        for i, g in enumerate(b.groups):
            group(g, at, errs, i)
    if b.routes:
        at = path + ".routes"
        for i, r in enumerate(b.routes):
            route(r, at, errs, i)
    if b.conveyances:
        at = path + ".conveyances"
        for i, c in enumerate(b.conveyances):
            conveyance(c, at, errs, i)
    if b.documents:
        documents(b.documents, path + ".documents", errs)
    if b.concealment:
        concealment(b.concealment, path + ".concealment", errs)
    if b.modus_operandi:
        methods(b.modus_operandi, path + ".modus_operandi", errs)
    for i, ln in enumerate(b.legislation):
        if ln.country not in COUNTRIES:
            country(ln.country, f"{path}.legislation[{i}].country", errs)
        summary = ln.summary
        if summary is not None and summary.lang not in ISO639_1:
            narrative(summary, f"{path}.legislation[{i}].summary", errs)
    for i, t in enumerate(b.technical):
        summary = t.summary
        if summary is not None and summary.lang not in ISO639_1:
            narrative(summary, f"{path}.technical[{i}].summary", errs)
    if (
        b.observed_from is not None
        and b.observed_to is not None
        and b.observed_to < b.observed_from
    ):
        order(
            b.observed_from,
            b.observed_to,
            path + ".observed_to",
            "observed_to is before observed_from",
            errs,
        )
    refs(b, b.groups, b.routes, path, errs)


_NEEDS_PERSON = frozenset(
    {
        AlertType.ARREST_SOUGHT,
        AlertType.PERSON_INFORMATION,
        AlertType.REPEAT_OFFENDER_WARNING,
        AlertType.MISSING_PERSON,
        AlertType.UNIDENTIFIED_PERSON,
    }
)


def _alert(b: Alert, path: str, errs: Errors, header: Header | None) -> None:
    narrative(b.narrative, path + ".narrative", errs)
    persons(b.persons, path + ".persons", errs)
    documents(b.documents, path + ".documents", errs)
    conveyances(b.conveyances, path + ".conveyances", errs)
    methods(b.modus_operandi, path + ".modus_operandi", errs)
    concealment(b.concealment, path + ".concealment", errs)
    narrative(b.action_requested, path + ".action_requested", errs)
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
    refs(b, [], [], path, errs)


def _request(b: _Request, path: str, errs: Errors, header: Header | None) -> None:
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
    narrative(b.deadline_reason, path + ".deadline_reason", errs)


def _information_request(b: InformationRequest, path: str, errs: Errors) -> None:
    for i, c in enumerate(b.checks):
        p = f"{path}.checks[{i}]"
        if isinstance(c, PersonCheck):
            person(c.person, p + ".person", errs)
        elif isinstance(c, VehicleCheck):
            conveyance(c.vehicle, p + ".vehicle", errs)
        elif isinstance(c, AddressCheck):
            address(c.address, p + ".address", errs)
        elif isinstance(c, DocumentCheck):
            document(c.document, p + ".document", errs)
        elif isinstance(c, PhoneCheck) and not phone_ok(c.number):
            misshapen(PHONE_PATTERN, p + ".number", errs)
    narrative(b.purpose, path + ".purpose", errs)
    narrative(b.questions, path + ".questions", errs)


def _document_verification(b: DocumentVerificationRequest, path: str, errs: Errors) -> None:
    documents(b.documents, path + ".documents", errs)
    if b.holder is not None:
        person(b.holder, path + ".holder", errs)
    narrative(b.grounds, path + ".grounds", errs)


_RETURNEES = (PersonRole.SMUGGLED_MIGRANT, PersonRole.VICTIM)


def _nationality_verification(b: NationalityVerificationRequest, path: str, errs: Errors) -> None:
    person(b.person, path + ".person", errs)
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
            country(code, f"{path}.{name}", errs)
    narrative(b.grounds, path + ".grounds", errs)


def _vessel_request(b: VesselRequest, path: str, errs: Errors) -> None:
    vessel(b.vessel, path + ".vessel", errs)
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
    narrative(b.grounds, path + ".grounds", errs)


def _mla_request(b: MLARequest, path: str, errs: Errors) -> None:
    authority(b.requesting_authority, path + ".requesting_authority", errs)
    authority(b.conducting_authority, path + ".conducting_authority", errs)
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
        narrative(getattr(b, name), f"{path}.{name}", errs)
    persons(b.persons, path + ".persons", errs)
    legal_basis(b.legal_basis, path + ".legal_basis", errs)
    provisions(b.offences, path + ".offences", errs)
    if b.translation_lang is not None:
        lang(b.translation_lang, path + ".translation_lang", errs)


def _extradition_request(b: ExtraditionRequest, path: str, errs: Errors) -> None:
    person(b.person, path + ".person", errs)
    narrative(b.facts_and_history, path + ".facts_and_history", errs)
    narrative(b.limitation, path + ".limitation", errs)
    narrative(b.prior_contact, path + ".prior_contact", errs)
    narrative(b.officials_present, path + ".officials_present", errs)
    provisions(b.provisions, path + ".provisions", errs)
    legal_basis(b.legal_basis, path + ".legal_basis", errs)
    if b.requesting_authority is not None:
        authority(b.requesting_authority, path + ".requesting_authority", errs)
    s = b.stage
    sp = path + ".stage"
    if isinstance(s, Accused):
        narrative(s.identity_evidence, sp + ".identity_evidence", errs)
        narrative(s.evidence_summary, sp + ".evidence_summary", errs)
        for i, o in enumerate(s.offences):
            op = f"{sp}.offences[{i}]"
            narrative(o.provision.excerpt, op + ".provision.excerpt", errs)
            narrative(o.acts, op + ".acts", errs)
            place(o.place, op + ".place", errs)
            order(
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
        provisions(s.offences, sp + ".offences", errs)
    if b.translation_lang is not None:
        lang(b.translation_lang, path + ".translation_lang", errs)


def _reply(b: Reply, path: str, errs: Errors, header: Header | None) -> None:
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
    narrative(b.narrative, path + ".narrative", errs)
    narrative(b.reason, path + ".reason", errs)
    conditions(b.conditions, path + ".conditions", errs)
    persons(b.persons, path + ".persons", errs)
    documents(b.documents, path + ".documents", errs)
    conveyances(b.conveyances, path + ".conveyances", errs)
    for i, pl in enumerate(b.places):
        place(pl, f"{path}.places[{i}]", errs)
    if header is not None and header.in_reply_to is None:
        errs.append(
            FieldError("header.in_reply_to", "in-reply-to", "a reply names the message it answers")
        )


def _in_reply_to(answered: str, header: Header | None, errs: Errors) -> None:
    if header is not None and header.in_reply_to != answered:
        errs.append(
            FieldError(
                "header.in_reply_to",
                "in-reply-to",
                f"in_reply_to must be {answered}, the message this body is about",
            )
        )


def _consent_request(b: ConsentRequest, path: str, errs: Errors) -> None:
    if ConsentScope.ONWARD_DISSEMINATION in b.scopes and not b.recipients:
        errs.append(
            FieldError(
                path + ".recipients", "consent-scope", "onward_dissemination names recipients"
            )
        )
    if ConsentScope.OTHER_PURPOSE in b.scopes and not b.purposes:
        errs.append(FieldError(path + ".purposes", "consent-scope", "other_purpose names purposes"))
    narrative(b.justification, path + ".justification", errs)


def _consent_decision(b: ConsentDecision, path: str, errs: Errors) -> None:
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
    conditions(b.conditions, path + ".conditions", errs)
    narrative(b.reason, path + ".reason", errs)


def check_body(body: Body, header: Header | None = None, root: str = "body") -> list[FieldError]:
    """Every semantic error of `body` (and of its agreement with `header`), in order."""
    errs: Errors = []
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
        narrative(body.note, root + ".note", errs)
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
        narrative(body.note, root + ".note", errs)
        _in_reply_to(body.message_id, header, errs)
    elif isinstance(body, Amendment | Withdrawal):
        narrative(body.reason, root + ".reason", errs)
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
