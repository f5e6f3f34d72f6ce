"""Body kinds: a tagged union on the field `kind`. Bodies travel encrypted end to end.

Sources: Protocol against the Smuggling of Migrants arts. 8, 10, 13 and 18; UNTOC art.
18(15) and the UNODC toolkit's checklists (6.6 extradition, 6.8 mutual legal assistance);
Tool 4.7 (police-to-police requests); INTERPOL's notice types for alerts.

Rules a type cannot express (cross-field, code lists) live in `schemas.body_rules`
and `schemas.entity_rules`.
"""

from __future__ import annotations

import typing
from datetime import date
from typing import Annotated

import msgspec

from schemas.codes import (
    AckStatus,
    AlertType,
    AssistanceType,
    ConsentScope,
    Decision,
    EvidenceForm,
    KindName,
    ProceedingType,
    PurgeReason,
    Purpose,
    ReplyStatus,
    ResponseTerm,
    TrialPresence,
    UseKind,
    Verification,
    VesselAsk,
)
from schemas.entities import (
    Address,
    Authority,
    Channel,
    Concealment,
    Conveyance,
    Count,
    CountryCode,
    Group,
    IdentityDocument,
    Label,
    LangTag,
    LegalBasis,
    LegalProvision,
    LegislationNote,
    MethodNote,
    Name,
    Narrative,
    Person,
    Phone,
    Place,
    Position,
    Reference,
    Route,
    TechnicalNote,
    Timestamp,
    Vehicle,
    Vessel,
)
from schemas.header import MessageId
from schemas.restrictions import Condition, PartyName

__all__ = [
    "BODY_TYPES",
    "KINDS",
    "REQUEST_KINDS",
    "Accused",
    "Acknowledgment",
    "AddressCheck",
    "Alert",
    "Amendment",
    "AmendmentReceipt",
    "Body",
    "Check",
    "ConsentDecision",
    "ConsentRequest",
    "Convicted",
    "DocumentCheck",
    "DocumentVerificationRequest",
    "ExtraditionRequest",
    "ForwardNotice",
    "InformationRequest",
    "IntelReport",
    "MLARequest",
    "Narrative",
    "NationalityVerificationRequest",
    "OffenceStatement",
    "PersonCheck",
    "PhoneCheck",
    "PurgeReceipt",
    "Reply",
    "UseDeclaration",
    "VehicleCheck",
    "VesselRequest",
    "Withdrawal",
]

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=300)]


class IntelReport(
    msgspec.Struct,
    gc=False,
    tag="intel_report",
    tag_field="kind",
    forbid_unknown_fields=True,
    frozen=True,
    omit_defaults=True,
):
    """An intelligence report under Article 10(1)(a)-(f). `title` is in `narrative.lang`."""

    title: Title
    narrative: Narrative
    persons: list[Person] = []  # suspects, facilitators, victims, migrants, witnesses
    groups: list[Group] = []  # (b) organizations and groups
    routes: list[Route] = []  # (a) embarkation, transit and destination points
    conveyances: list[Conveyance] = []  # (a) carriers and means of transportation
    documents: list[IdentityDocument] = []  # (c) documents not tied to a person
    concealment: list[Concealment] = []  # (d)
    modus_operandi: list[MethodNote] = []  # (b)
    legislation: list[LegislationNote] = []  # (e)
    technical: list[TechnicalNote] = []  # (f)
    observed_from: date | None = None
    observed_to: date | None = None


class _Body(
    msgspec.Struct,
    gc=False,
    tag_field="kind",
    forbid_unknown_fields=True,
    frozen=True,
    omit_defaults=True,
    kw_only=True,
):
    """Base of the kinds added after IntelReport: keyword-only, so fields can grow."""


class Alert(_Body, tag="alert", frozen=True, kw_only=True):
    """A notice in the manner of INTERPOL's (toolkit 6.16): broadcast to focal points."""

    type: AlertType
    title: Title
    narrative: Narrative
    persons: list[Person] = []
    documents: list[IdentityDocument] = []
    conveyances: list[Conveyance] = []
    modus_operandi: list[MethodNote] = []
    concealment: list[Concealment] = []
    warrant: Reference | None = None  # arrest_sought: the arrest warrant it rests on
    action_requested: Narrative | None = None
    valid_until: Timestamp | None = None


class _Request(_Body, frozen=True, kw_only=True):
    """What every request carries: when an answer is due and why (toolkit 6.6, 6.8)."""

    response_term: ResponseTerm = ResponseTerm.NONE
    respond_by: Timestamp | None = None
    deadline_reason: Narrative | None = None
    case_reference: Reference | None = None


# Tool 4.7: checks on persons, vehicles, telephone numbers, addresses and passports.
class PersonCheck(
    msgspec.Struct, gc=False,
    tag="person",
    tag_field="check",
    forbid_unknown_fields=True,
    frozen=True,
    omit_defaults=True,
):
    person: Person


class VehicleCheck(
    msgspec.Struct, gc=False,
    tag="vehicle",
    tag_field="check",
    forbid_unknown_fields=True,
    frozen=True,
    omit_defaults=True,
):
    vehicle: Vehicle


class PhoneCheck(
    msgspec.Struct, gc=False,
    tag="phone",
    tag_field="check",
    forbid_unknown_fields=True,
    frozen=True,
    omit_defaults=True,
):
    number: Phone


class AddressCheck(
    msgspec.Struct, gc=False,
    tag="address",
    tag_field="check",
    forbid_unknown_fields=True,
    frozen=True,
    omit_defaults=True,
):
    address: Address


class DocumentCheck(
    msgspec.Struct, gc=False,
    tag="document",
    tag_field="check",
    forbid_unknown_fields=True,
    frozen=True,
    omit_defaults=True,
):
    """A passport or other document: validity, SLTD status, holder."""

    document: IdentityDocument


Check = PersonCheck | VehicleCheck | PhoneCheck | AddressCheck | DocumentCheck


class InformationRequest(_Request, tag="information_request", frozen=True, kw_only=True):
    """Police-to-police request before any judicial proceeding (Tool 4.7)."""

    checks: Annotated[list[Check], msgspec.Meta(min_length=1)]
    purpose: Narrative
    questions: Narrative | None = None


class DocumentVerificationRequest(
    _Request, tag="document_verification_request", frozen=True, kw_only=True
):
    """Protocol art. 13: verify, within a reasonable time, documents purported to have been
    issued in the requested State's name."""

    documents: Annotated[list[IdentityDocument], msgspec.Meta(min_length=1)]
    grounds: Narrative  # why the documents are suspected of use in smuggling (art. 6)
    holder: Person | None = None
    response_term: ResponseTerm = ResponseTerm.REASONABLE_TIME


class NationalityVerificationRequest(
    _Request, tag="nationality_verification_request", frozen=True, kw_only=True
):
    """Protocol art. 18(3): is this person a national or permanent resident? And, under
    art. 18(4), will the requested State issue travel documents for the return?"""

    person: Person
    claimed_nationality: CountryCode | None = None
    claimed_residence: CountryCode | None = None
    grounds: Narrative
    travel_document_needed: bool = False
    response_term: ResponseTerm = ResponseTerm.WITHOUT_UNDUE_DELAY


class VesselRequest(_Request, tag="vessel_request", frozen=True, kw_only=True):
    """Protocol art. 8: confirm registry, authorize boarding and search, or assist."""

    vessel: Vessel
    asks: Annotated[list[VesselAsk], msgspec.Meta(min_length=1)]
    grounds: Narrative  # the reasonable grounds to suspect smuggling by sea (art. 8(2))
    position: Position | None = None
    observed_at: Timestamp | None = None
    persons_aboard: Count | None = None
    life_at_risk: bool = False  # art. 9(1)(a): safety of life at sea comes first
    response_term: ResponseTerm = ResponseTerm.EXPEDITIOUSLY


class MLARequest(_Request, tag="mla_request", frozen=True, kw_only=True):
    """A request for mutual legal assistance: UNTOC art. 18(15)(a)-(f) and the toolkit's
    recommended contents (6.8). The 18(15) items are required by type where the
    Convention makes them unconditional; (c) is checked semantically (not for service of
    judicial documents), (e) is "where possible"."""

    # 18(15)(a)
    requesting_authority: Authority
    # 18(15)(b)
    subject_matter: Narrative
    proceeding: ProceedingType
    conducting_authority: Authority
    # 18(15)(c): required unless the only assistance is service of judicial documents
    facts: Narrative | None = None
    # 18(15)(d)
    assistance: Annotated[list[AssistanceType], msgspec.Meta(min_length=1)]
    assistance_description: Narrative
    procedures: Narrative | None = None  # particular procedure to follow, and why
    # 18(15)(e): where possible
    persons: list[Person] = []
    # 18(15)(f)
    purpose: Narrative
    # Toolkit 6.8, recommended
    legal_basis: LegalBasis | None = None
    offences: list[LegalProvision] = []
    link_to_proceedings: Narrative | None = None
    prior_contact: Narrative | None = None
    other_channels: list[Channel] = []
    confidentiality: Narrative | None = None  # need, reason, consult if it cannot be kept
    officials_present: Narrative | None = None  # who wishes to attend the execution and why
    translation_lang: LangTag | None = None  # language the requested State specified
    response_term: ResponseTerm = ResponseTerm.AS_SOON_AS_POSSIBLE


class OffenceStatement(
    msgspec.Struct,
    gc=False,
    forbid_unknown_fields=True,
    frozen=True,
    omit_defaults=True,
    kw_only=True,
):
    """Toolkit 6.6 (accused): each offence, its acts, time and place, penalty, role."""

    provision: LegalProvision
    acts: Narrative
    committed_on: date | None = None
    committed_until: date | None = None
    place: Place
    participation: Label  # the person's degree of participation
    limitation: Label | None = None


class Accused(
    msgspec.Struct, gc=False,
    tag="accused",
    tag_field="status",
    forbid_unknown_fields=True,
    frozen=True,
    omit_defaults=True,
    kw_only=True,
):
    warrant_reference: Reference
    warrant_issued_by: Name
    warrant_issued_on: date
    warrant_certified_copy: bool = True  # original or certified copy attached
    offences: Annotated[list[OffenceStatement], msgspec.Meta(min_length=1)]
    identity_evidence: Narrative  # evidence of identity is always required
    evidence_form: EvidenceForm
    evidence_summary: Narrative


class Convicted(
    msgspec.Struct, gc=False,
    tag="convicted",
    tag_field="status",
    forbid_unknown_fields=True,
    frozen=True,
    omit_defaults=True,
    kw_only=True,
):
    judgment_reference: Reference
    court: Name
    judgment_on: date
    enforceable: bool  # the sentence is immediately enforceable
    sentence: Label | None = None  # None: intention to impose a sentence (below)
    intention_to_impose_sentence: bool = False
    sentence_served: Label | None = None  # to what extent already carried out
    presence: Annotated[list[TrialPresence], msgspec.Meta(min_length=1)]
    offences: Annotated[list[LegalProvision], msgspec.Meta(min_length=1)]


class ExtraditionRequest(_Request, tag="extradition_request", frozen=True, kw_only=True):
    """Toolkit 6.6 checklist; `stage` is the accused or the convicted variant."""

    person: Person  # identity, description, nationality and location of the person sought
    facts_and_history: Narrative  # including applicable law and the charge
    provisions: Annotated[list[LegalProvision], msgspec.Meta(min_length=1)]
    limitation: Narrative  # relevant limitation periods, or that none applies
    legal_basis: LegalBasis
    stage: Accused | Convicted
    requesting_authority: Authority | None = None
    prior_contact: Narrative | None = None
    officials_present: Narrative | None = None
    other_channels: list[Channel] = []
    translation_lang: LangTag | None = None
    provisional_arrest: bool = False


class Reply(_Body, tag="reply", frozen=True, kw_only=True):
    """An answer to a request or report; the header's `in_reply_to` names what it answers."""

    status: ReplyStatus
    narrative: Narrative | None = None
    reason: Narrative | None = None  # why declined or postponed (UNTOC art. 18(23), (25))
    verification: Verification | None = None  # arts. 8, 13, 18(3)
    decision: Decision | None = None  # art. 8 boarding authorization
    conditions: list[Condition] = []  # art. 8(5): conditions on an authorization
    persons: list[Person] = []
    documents: list[IdentityDocument] = []
    conveyances: list[Conveyance] = []
    places: list[Place] = []


class Acknowledgment(_Body, tag="acknowledgment", frozen=True, kw_only=True):
    """Receipt of a message (the toolkit's acknowledgement cover sheet)."""

    message_id: MessageId
    received_at: Timestamp
    status: AckStatus = AckStatus.RECEIVED
    reference: Reference | None = None  # the recipient's own case number
    expected_by: Timestamp | None = None
    note: Narrative | None = None


class ConsentRequest(_Body, tag="consent_request", frozen=True, kw_only=True):
    """Ask the originator to lift a restriction (art. 10(2)): evidential use, onward
    dissemination, executive action..."""

    message_id: MessageId
    scopes: Annotated[list[ConsentScope], msgspec.Meta(min_length=1)]
    recipients: list[PartyName] = []  # for onward_dissemination
    purposes: list[Purpose] = []  # for other_purpose
    justification: Narrative
    needed_by: Timestamp | None = None


class ConsentDecision(_Body, tag="consent_decision", frozen=True, kw_only=True):
    message_id: MessageId  # the information consent is about
    request: MessageId  # the ConsentRequest decided
    decision: Decision
    scopes: list[ConsentScope] = []  # what is granted
    recipients: list[PartyName] = []
    purposes: list[Purpose] = []
    conditions: list[Condition] = []
    reason: Narrative | None = None
    valid_until: Timestamp | None = None


class ForwardNotice(_Body, tag="forward_notice", frozen=True, kw_only=True):
    """Tells the originator its information went on, and under which consent."""

    message_id: MessageId
    forwarded_to: Annotated[list[PartyName], msgspec.Meta(min_length=1)]
    forwarded_at: Timestamp
    consent: MessageId | None = None
    forwarded_as: MessageId | None = None


class UseDeclaration(_Body, tag="use_declaration", frozen=True, kw_only=True):
    message_id: MessageId
    use: UseKind
    purpose: Purpose
    declared_at: Timestamp
    consent: MessageId | None = None
    note: Narrative | None = None


class PurgeReceipt(_Body, tag="purge_receipt", frozen=True, kw_only=True):
    message_id: MessageId
    purged_at: Timestamp
    reason: PurgeReason
    copies: Count = 1


class Amendment(_Body, tag="amendment", frozen=True, kw_only=True):
    """The originator tightens the restrictions of a message it sent (the SLTD practice of
    updating a record). The new restrictions travel in the signed header's act, where
    the broker checks that they only tighten; holders apply them and answer with an
    `amendment_receipt`."""

    message_id: MessageId
    amended_at: Timestamp
    reason: Narrative | None = None


class Withdrawal(_Body, tag="withdrawal", frozen=True, kw_only=True):
    """The originator withdraws a message it sent and asks every holder to destroy its
    copy; each answers with a `purge_receipt` (reason `originator_request`)."""

    message_id: MessageId
    withdrawn_at: Timestamp
    reason: Narrative | None = None


class AmendmentReceipt(_Body, tag="amendment_receipt", frozen=True, kw_only=True):
    """A holder applied an amendment to its copy."""

    message_id: MessageId  # the information amended
    amendment: MessageId  # the Amendment applied
    applied_at: Timestamp


Body = (
    IntelReport
    | Alert
    | InformationRequest
    | DocumentVerificationRequest
    | NationalityVerificationRequest
    | VesselRequest
    | MLARequest
    | ExtraditionRequest
    | Reply
    | Acknowledgment
    | ConsentRequest
    | ConsentDecision
    | ForwardNotice
    | UseDeclaration
    | PurgeReceipt
    | Amendment
    | Withdrawal
    | AmendmentReceipt
)

# Everything else that lists the kinds derives from the union: the one list of body
# types (its order is the JSON Schema's), of tag words, and of requests. `KindName` and
# `Kind` (schemas.codes) must spell them statically for the type checkers; a test keeps
# them equal to these.
BODY_TYPES: tuple[type[msgspec.Struct], ...] = typing.get_args(Body)
KINDS: frozenset[str] = frozenset(str(t.__struct_config__.tag) for t in BODY_TYPES)
# Requests (toolkit 6.6, 6.8; Tool 4.7) expect a reply by their response term.
REQUEST_KINDS: frozenset[str] = frozenset(
    str(t.__struct_config__.tag) for t in BODY_TYPES if issubclass(t, _Request)
)


def body_kind(body: Body) -> KindName:
    """The tag of a body, as it appears in `Header.kind`."""
    tag = body.__struct_config__.tag
    assert isinstance(tag, str)
    return tag  # type: ignore[return-value]  # every tag is a KindName (tested)
