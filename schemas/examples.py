"""Realistic example messages, built from the seed documents' scenarios.

Every person, vessel and number here is invented. The body builders take no arguments
(the demo calls `mekong_route_report()`); `example_header(body)` wraps any of them in a
header that passes validation. `EXAMPLES` maps each kind to its builder, so tests and the
JSON fixtures cover the whole message family.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from schemas.bodies import (
    Accused,
    Acknowledgment,
    Alert,
    Amendment,
    AmendmentReceipt,
    Body,
    ConsentDecision,
    ConsentRequest,
    DocumentCheck,
    DocumentVerificationRequest,
    ExtraditionRequest,
    ForwardNotice,
    InformationRequest,
    IntelReport,
    MLARequest,
    NationalityVerificationRequest,
    OffenceStatement,
    PersonCheck,
    PhoneCheck,
    PurgeReceipt,
    Reply,
    UseDeclaration,
    VehicleCheck,
    VesselRequest,
    Withdrawal,
    body_kind,
)
from schemas.codes import (
    TLP,
    AckStatus,
    AlertType,
    AssistanceType,
    Category,
    ConcealmentMethod,
    ConsentScope,
    Decision,
    DocumentStatus,
    EvidenceForm,
    InfoAccuracy,
    LegalBasisType,
    Level,
    MethodAspect,
    PersonRole,
    PointRole,
    ProceedingType,
    PurgeReason,
    Purpose,
    ReplyStatus,
    ResponseTerm,
    Sex,
    SourceReliability,
    TransportMode,
    Urgency,
    UrgencyReason,
    UseKind,
    Verification,
    VesselAsk,
    VesselType,
)
from schemas.entities import (
    Authority,
    Concealment,
    Group,
    IdentityDocument,
    LegalBasis,
    LegalProvision,
    MethodNote,
    Money,
    Narrative,
    Period,
    Person,
    Place,
    Position,
    Route,
    RoutePoint,
    Vehicle,
    Vessel,
)
from schemas.header import SCHEMA_VERSION, Evaluation, Header, Topics
from schemas.ids import new_message_id
from schemas.restrictions import Condition, Restrictions

# Fixed so fixtures are byte-stable.
CREATED = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
ORIGINAL_ID = "01JPA7Q5K3M4N5P6Q7R8S9T0VW"
CONSENT_REQUEST_ID = "01JPB0000000000000000000CR"


def _en(text: str) -> Narrative:
    return Narrative(text, "en")


def mekong_route_report() -> IntelReport:
    """Art. 10(1)(a), (b), (d): a route from Shan State through Laos to Bangkok, the group
    running it and how people are hidden (COMMIT principle 1: an intelligence report for
    source, transit and destination countries)."""
    return IntelReport(
        title="Tachileik-Bokeo-Chiang Rai route: pickup trucks, fee USD 1,200",
        narrative=_en(
            "Since January, groups of 8-12 Myanmar nationals, among them minors, are "
            "collected in Tachileik, cross the Mekong by long-tail boat at night to Ton "
            "Pheung (Bokeo) and are driven in pickup trucks with false floors to Chiang "
            "Rai, then by bus to Bangkok. Recruiters promise restaurant work; several "
            "women were later found in debt bondage in Samut Sakhon."
        ),
        persons=[
            Person(
                ref="P1",
                roles=[PersonRole.SUSPECT],
                family_name="AUNG",
                given_names="KYAW MIN",
                aliases=["Ko Min", "Big Brother"],
                sex=Sex.M,
                birth_year=1984,
                nationalities=["MM"],
                phones=["+959420123456"],
                last_known_location=Place("MM", "Tachileik"),
            ),
            Person(
                ref="P2",
                roles=[PersonRole.FACILITATOR],
                family_name="SOMPHONE",
                given_names="VIENG",
                sex=Sex.M,
                nationalities=["LA"],
                description=_en("Boat operator at Ton Pheung landing; also drives truck V1."),
            ),
            Person(
                ref="P3",
                roles=[PersonRole.VICTIM, PersonRole.WITNESS],
                given_names="NAN",
                sex=Sex.F,
                minor=True,
                nationalities=["MM"],
                description=_en("16-year-old, identified in Samut Sakhon; gave a statement."),
            ),
        ],
        groups=[
            Group(
                ref="G1",
                name="Golden Triangle crossing network",
                members=["P1", "P2"],
                active_in=["MM", "LA", "TH"],
                estimated_size=15,
                methods=_en("Recruitment through village brokers; payment by mobile wallet."),
            )
        ],
        routes=[
            Route(
                ref="R1",
                mode=TransportMode.MIXED,
                points=[
                    RoutePoint(PointRole.EMBARKATION, Place("MM", "Tachileik"), TransportMode.SEA),
                    RoutePoint(
                        PointRole.TRANSIT,
                        Place("LA", "Ton Pheung", Position(20.30, 100.10)),
                        TransportMode.LAND,
                    ),
                    RoutePoint(PointRole.TRANSIT, Place("TH", "Chiang Rai"), TransportMode.LAND),
                    RoutePoint(PointRole.DESTINATION, Place("TH", "Bangkok")),
                ],
                period=Period(date(2025, 1, 6), date(2025, 3, 10)),
                fee_per_person=Money(1200, "USD"),
                groups=["G1"],
            )
        ],
        conveyances=[
            Vehicle(
                ref="V1",
                registration="1KT 4521",
                registration_country="LA",
                make="Toyota",
                model="Hilux",
                colour="white",
            )
        ],
        concealment=[
            Concealment(
                method=ConcealmentMethod.VEHICLE_COMPARTMENT,
                conveyance="V1",
                description=_en("False floor under the cargo bed, room for six people lying."),
                detection=_en("Bed floor 25 cm higher than stock; fresh welds at the rear axle."),
            )
        ],
        modus_operandi=[
            MethodNote(
                MethodAspect.PAYMENT,
                _en("Half paid before departure, half on arrival by relatives via mobile wallet."),
            ),
            MethodNote(
                MethodAspect.COMMUNICATION, _en("Drivers receive pickup points by voice call.")
            ),
        ],
        observed_from=date(2025, 1, 6),
        observed_to=date(2025, 3, 10),
    )


def vessel_by_sea() -> VesselRequest:
    """Protocol art. 8(2): a fishing vessel flying Sri Lanka's flag, sighted with people on
    deck in the Indian Ocean; confirm registry and authorize boarding."""
    return VesselRequest(
        vessel=Vessel(
            ref="S1",
            name="SAMUDRA DEVI",
            flag="LK",
            imo="9074729",
            call_sign="4RAB7",
            vessel_type=VesselType.FISHING,
            length_m=24.5,
            home_port=Place("LK", "Negombo"),
        ),
        asks=[VesselAsk.CONFIRM_REGISTRY, VesselAsk.BOARD, VesselAsk.SEARCH],
        grounds=_en(
            "Patrol aircraft observed about 60 persons on deck, no fishing gear deployed, "
            "course 135 towards the Cocos (Keeling) Islands; the vessel did not answer VHF."
        ),
        position=Position(-8.35, 92.70),
        observed_at=datetime(2025, 3, 14, 6, 5, tzinfo=UTC),
        persons_aboard=60,
        life_at_risk=True,
        deadline_reason=_en("Vessel reaches the Cocos (Keeling) Islands in about 30 hours."),
        case_reference="AMSA-2025-0314",
    )


def forged_passport_ring() -> IntelReport:
    """Art. 10(1)(c), (d): a workshop altering genuine passports and selling look-alikes."""
    return IntelReport(
        title="Photo-substituted passports sold in Kuala Lumpur for Europe-bound migrants",
        narrative=_en(
            "A workshop in Kuala Lumpur substitutes the photo page of genuine Malaysian and "
            "Thai passports (bought or stolen) and sells them with matching boarding passes. "
            "Two documents seized at Istanbul airport on 2 March; one blank booklet reported "
            "stolen from a regional passport office."
        ),
        persons=[
            Person(
                ref="P1",
                roles=[PersonRole.SUSPECT],
                family_name="TAN",
                given_names="WEI LIANG",
                nationalities=["MY"],
                addresses=[],
                description=_en("Runs the workshop; contacted through a messaging channel."),
            ),
            Person(
                ref="P2",
                roles=[PersonRole.SMUGGLED_MIGRANT],
                family_name="RAHIMI",
                given_names="FARID",
                nationalities=["AF"],
                documents=[
                    IdentityDocument(
                        type="P",
                        issuing_state="MY",
                        number="A12345678",
                        status=DocumentStatus.ALTERED,
                        nationality="MY",
                        name_on_document="LIM CHONG WEI",
                        issued_on=date(2021, 5, 3),
                        expires_on=date(2026, 5, 2),
                        findings=_en(
                            "Laminate lifted at the photo edge; the MRZ check digit of the "
                            "date of birth does not match the visual zone."
                        ),
                    ),
                    IdentityDocument(
                        type="P",
                        issuing_state="AF",
                        number="P01928374",
                        status=DocumentStatus.GENUINE,
                    ),
                ],
            ),
        ],
        groups=[Group(ref="G1", members=["P1"], active_in=["MY", "TH", "TR"])],
        documents=[
            IdentityDocument(
                type="P",
                issuing_state="TH",
                number="AA1122334",
                status=DocumentStatus.IMPOSTOR,
                findings=_en("Genuine passport used by a look-alike; ear shape differs."),
            ),
            IdentityDocument(
                type="P",
                issuing_state="MY",
                number="A99887766",
                status=DocumentStatus.STOLEN_BLANK,
                blank=True,
            ),
        ],
        concealment=[
            Concealment(
                method=ConcealmentMethod.FALSE_IDENTITY,
                description=_en("Travellers matched to holders by age and face shape."),
            )
        ],
        modus_operandi=[
            MethodNote(MethodAspect.DOCUMENT_FRAUD, _en("USD 4,000 per passport, delivered in KL."))
        ],
    )


def mla_request() -> MLARequest:
    """UNTOC art. 18(15)(a)-(f) plus the toolkit 6.8 recommendations: Thailand asks
    Malaysia for bank records and a witness statement."""
    return MLARequest(
        requesting_authority=Authority(
            "Office of the Attorney General, International Affairs Department",
            "TH",
            function="Central Authority",
            contact="central.authority@example.invalid",
        ),
        subject_matter=_en(
            "Prosecution of a network smuggling Myanmar nationals into Thailand and "
            "trafficking women for forced labour (Anti-Trafficking in Persons Act B.E. 2551)."
        ),
        proceeding=ProceedingType.PROSECUTION,
        conducting_authority=Authority(
            "Department of Special Investigation, Human Trafficking Division",
            "TH",
            function="Investigating authority",
        ),
        facts=_en(
            "Between January and March 2025 the accused organized at least nine crossings; "
            "fees were paid into accounts held in Malaysia by a relative of the accused."
        ),
        assistance=[AssistanceType.RECORDS, AssistanceType.TAKING_EVIDENCE],
        assistance_description=_en(
            "Certified copies of account-opening documents and statements for 1 Dec 2024 to "
            "31 Mar 2025 of two named accounts; a statement from the account holder."
        ),
        procedures=_en("Records certified by the bank's custodian, so they are admissible."),
        persons=[
            Person(
                ref="P1",
                roles=[PersonRole.SUSPECT],
                family_name="AUNG",
                given_names="KYAW MIN",
                nationalities=["MM"],
            ),
            Person(
                ref="P2",
                roles=[PersonRole.WITNESS],
                family_name="AUNG",
                given_names="SU SU",
                nationalities=["MM"],
                last_known_location=Place("MY", "Johor Bahru"),
            ),
        ],
        purpose=_en("Evidence of the proceeds of the smuggling for the trial in Chiang Rai."),
        legal_basis=LegalBasis(
            LegalBasisType.REGIONAL_SCHEME, "ASEAN Treaty on Mutual Legal Assistance (2004)"
        ),
        offences=[
            LegalProvision(
                "Anti-Trafficking in Persons Act B.E. 2551, s. 6 and 52",
                max_penalty="12 years' imprisonment",
            )
        ],
        link_to_proceedings=_en("The records show who received the fees, linking P1 to them."),
        confidentiality=_en(
            "Do not notify the account holder before the statement; consult us if "
            "confidentiality cannot be kept."
        ),
        translation_lang="en",
        response_term=ResponseTerm.BY_DATE,
        respond_by=datetime(2025, 6, 30, tzinfo=UTC),
        deadline_reason=_en("Trial date set for 15 July 2025."),
        case_reference="OAG-IAD-2025/0412",
    )


def arrest_alert() -> Alert:
    return Alert(
        type=AlertType.ARREST_SOUGHT,
        title="Wanted: organizer of Tachileik crossings",
        narrative=_en("Arrest sought with a view to extradition to Thailand."),
        persons=[
            Person(
                ref="P1",
                roles=[PersonRole.SUSPECT],
                family_name="AUNG",
                given_names="KYAW MIN",
                nationalities=["MM"],
            )
        ],
        warrant="CR-AW-118/2025",
    )


def information_request() -> InformationRequest:
    return InformationRequest(
        checks=[
            PersonCheck(
                Person(
                    ref="P1",
                    roles=[PersonRole.SUSPECT],
                    family_name="SOMPHONE",
                    given_names="VIENG",
                    nationalities=["LA"],
                )
            ),
            VehicleCheck(Vehicle(ref="V1", registration="1KT 4521", registration_country="LA")),
            PhoneCheck("+8562055512345"),
            DocumentCheck(IdentityDocument(type="P", issuing_state="LA", number="P1234567")),
        ],
        purpose=_en("Identify the driver of the truck used on route R1."),
        response_term=ResponseTerm.NONE,
    )


def document_verification_request() -> DocumentVerificationRequest:
    return DocumentVerificationRequest(
        documents=[
            IdentityDocument(
                type="P", issuing_state="MY", number="A12345678", status=DocumentStatus.ALTERED
            )
        ],
        grounds=_en("Seized at Istanbul airport from a traveller bound for Europe."),
    )


def nationality_verification_request() -> NationalityVerificationRequest:
    return NationalityVerificationRequest(
        person=Person(
            ref="P1",
            roles=[PersonRole.SMUGGLED_MIGRANT],
            family_name="HOSSAIN",
            given_names="RAKIB",
            born_on=date(1999, 4, 2),
        ),
        claimed_nationality="BD",
        grounds=_en("States he is from Sylhet; holds a birth certificate copy."),
        travel_document_needed=True,
    )


def extradition_request() -> ExtraditionRequest:
    provision = LegalProvision(
        "Anti-Trafficking in Persons Act B.E. 2551, s. 6", max_penalty="12 years' imprisonment"
    )
    return ExtraditionRequest(
        person=Person(
            ref="P1",
            roles=[PersonRole.SUSPECT],
            family_name="AUNG",
            given_names="KYAW MIN",
            nationalities=["MM"],
            last_known_location=Place("MY", "Johor Bahru"),
        ),
        facts_and_history=_en("Charged on 2 April 2025; absconded before the hearing."),
        provisions=[provision],
        limitation=_en("Prosecution is time-barred after 20 years (Criminal Code s. 95)."),
        legal_basis=LegalBasis(LegalBasisType.MULTILATERAL_CONVENTION, "UNTOC art. 16"),
        stage=Accused(
            warrant_reference="CR-AW-118/2025",
            warrant_issued_by="Chiang Rai Provincial Court",
            warrant_issued_on=date(2025, 4, 2),
            offences=[
                OffenceStatement(
                    provision=provision,
                    acts=_en("Organized nine crossings of 8-12 persons each for a fee."),
                    committed_on=date(2025, 1, 6),
                    committed_until=date(2025, 3, 10),
                    place=Place("TH", "Chiang Rai"),
                    participation="organizer",
                )
            ],
            identity_evidence=_en("Fingerprints taken on a 2019 arrest; photo identification."),
            evidence_form=EvidenceForm.UNSWORN_STATEMENT_OF_CASE,
            evidence_summary=_en("Statements of three victims and the truck driver."),
        ),
    )


def reply() -> Reply:
    return Reply(
        status=ReplyStatus.ANSWERED,
        verification=Verification.CONFIRMED,
        decision=Decision.GRANTED_WITH_CONDITIONS,
        conditions=[Condition("Inform the flag State of the results (art. 8(3)).", "en")],
        narrative=_en("SAMUDRA DEVI is registered in Colombo; boarding and search authorized."),
    )


def acknowledgment() -> Acknowledgment:
    return Acknowledgment(
        message_id=ORIGINAL_ID,
        received_at=CREATED,
        status=AckStatus.ACCEPTED,
        reference="MY-CA-2025-77",
    )


def consent_request() -> ConsentRequest:
    return ConsentRequest(
        message_id=ORIGINAL_ID,
        scopes=[ConsentScope.EVIDENTIAL_USE],
        justification=_en("We wish to produce the route report at trial in Chiang Rai."),
    )


def consent_decision() -> ConsentDecision:
    return ConsentDecision(
        message_id=ORIGINAL_ID,
        request=CONSENT_REQUEST_ID,
        decision=Decision.GRANTED_WITH_CONDITIONS,
        scopes=[ConsentScope.EVIDENTIAL_USE],
        conditions=[Condition("Do not disclose the source's identity.", "en")],
    )


def forward_notice() -> ForwardNotice:
    return ForwardNotice(
        message_id=ORIGINAL_ID,
        forwarded_to=["MY-RMP"],
        forwarded_at=CREATED,
        consent=CONSENT_REQUEST_ID,
    )


def use_declaration() -> UseDeclaration:
    return UseDeclaration(
        message_id=ORIGINAL_ID,
        use=UseKind.INVESTIGATIVE_LEAD,
        purpose=Purpose.SMUGGLING_OF_MIGRANTS,
        declared_at=CREATED,
    )


def purge_receipt() -> PurgeReceipt:
    return PurgeReceipt(
        message_id=ORIGINAL_ID, purged_at=CREATED, reason=PurgeReason.RETENTION_ELAPSED, copies=2
    )


def amendment() -> Amendment:
    return Amendment(message_id=ORIGINAL_ID, amended_at=CREATED,
                     reason=_en("The operation moved forward: shorter use window."))


def withdrawal() -> Withdrawal:
    return Withdrawal(message_id=ORIGINAL_ID, withdrawn_at=CREATED,
                      reason=_en("The source proved unreliable."))


def amendment_receipt() -> AmendmentReceipt:
    return AmendmentReceipt(message_id=ORIGINAL_ID, amendment=CONSENT_REQUEST_ID,
                            applied_at=CREATED)


EXAMPLES: dict[str, Callable[[], Body]] = {
    "intel_report": mekong_route_report,
    "alert": arrest_alert,
    "information_request": information_request,
    "document_verification_request": document_verification_request,
    "nationality_verification_request": nationality_verification_request,
    "vessel_request": vessel_by_sea,
    "mla_request": mla_request,
    "extradition_request": extradition_request,
    "reply": reply,
    "acknowledgment": acknowledgment,
    "consent_request": consent_request,
    "consent_decision": consent_decision,
    "forward_notice": forward_notice,
    "use_declaration": use_declaration,
    "purge_receipt": purge_receipt,
    "amendment": amendment,
    "withdrawal": withdrawal,
    "amendment_receipt": amendment_receipt,
}

# The four seed scenarios shipped as JSON fixtures under tests/schemas/fixtures/.
SCENARIOS: dict[str, Callable[[], Body]] = {
    "mekong_route_report": mekong_route_report,
    "vessel_by_sea": vessel_by_sea,
    "forged_passport_ring": forged_passport_ring,
    "mla_request": mla_request,
}

_CATEGORY = {
    "intel_report": Category.ROUTES,
    "vessel_request": Category.ROUTES,
    "document_verification_request": Category.DOCUMENTS,
}
_ANSWERS = {
    "reply": ORIGINAL_ID,
    "acknowledgment": ORIGINAL_ID,
    "consent_request": ORIGINAL_ID,
    "consent_decision": CONSENT_REQUEST_ID,
    "forward_notice": ORIGINAL_ID,
    "use_declaration": ORIGINAL_ID,
    "purge_receipt": ORIGINAL_ID,
    "amendment": ORIGINAL_ID,
    "withdrawal": ORIGINAL_ID,
    "amendment_receipt": CONSENT_REQUEST_ID,
}


def example_header(
    body: Body,
    sender: str = "TH-DSI",
    recipients: tuple[str, ...] = ("LA-NCB", "MY-RMP"),
    message_id: str | None = None,
) -> Header:
    """A valid header for `body`: the kind matches, replies name what they answer."""
    kind = body_kind(body)
    urgent = kind == "vessel_request"
    return Header(
        v=SCHEMA_VERSION,
        id=message_id or new_message_id(CREATED, rand=lambda n: bytes(range(n))),
        kind=kind,
        sender=sender,
        sender_key="ed25519:TH-DSI-2025-key1",
        created_at=CREATED,
        category=_CATEGORY.get(kind, Category.OTHER),
        level=Level.RESTRICTED,
        restrictions=Restrictions(
            purposes=[Purpose.SMUGGLING_OF_MIGRANTS, Purpose.TRAFFICKING_IN_PERSONS],
            no_evidential_use=True,
            tlp=TLP.AMBER,
        ),
        recipients=sorted(recipients),
        in_reply_to=_ANSWERS.get(kind),
        urgency=Urgency.URGENT if urgent else Urgency.ROUTINE,
        urgency_reasons=[UrgencyReason.RISK_TO_VICTIM] if urgent else [],
        evaluation=Evaluation(SourceReliability.B, InfoAccuracy.KNOWN_PERSONALLY),
        topics=Topics(route_countries=["LA", "MM", "TH"], transport_modes=["land"])
        if kind == "intel_report"
        else Topics(),
        languages=["en"],
    )
