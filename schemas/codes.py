"""Coded vocabularies. Codes, not prose, so content crosses languages and legal systems."""

from __future__ import annotations

import enum
from typing import Literal


class Level(enum.StrEnum):
    """Confidentiality level, checked against each recipient's clearance."""

    UNCLASSIFIED = "UNCLASSIFIED"
    RESTRICTED = "RESTRICTED"
    CONFIDENTIAL = "CONFIDENTIAL"
    SECRET = "SECRET"

    @property
    def rank(self) -> int:
        return _LEVEL_RANK[self]


_LEVEL_RANK = {lvl: i for i, lvl in enumerate(Level)}


class Category(enum.StrEnum):
    """Article 10(1) of the Smuggling of Migrants Protocol: what States exchange."""

    ROUTES = "a"  # embarkation and destination points, routes, carriers, means of transport
    GROUPS = "b"  # identity and methods of organizations or groups
    DOCUMENTS = "c"  # authenticity and form of travel documents, misuse
    CONCEALMENT = "d"  # means and methods of concealment and transportation
    LEGISLATION = "e"  # legislative experiences, practices and measures
    SCIENCE = "f"  # scientific and technological information
    OTHER = "other"


class TLP(enum.StrEnum):
    """Traffic Light Protocol 2.0 labels, presets that expand into restrictions."""

    RED = "RED"
    AMBER_STRICT = "AMBER+STRICT"
    AMBER = "AMBER"
    GREEN = "GREEN"
    CLEAR = "CLEAR"

    @property
    def rank(self) -> int:
        """How restrictive the label is: CLEAR 0 < GREEN < AMBER < AMBER+STRICT < RED 4."""
        return TLP_RANK[self]


# The one ordering of the labels (the opposite of their declaration order, which lists
# the strictest first as TLP 2.0 does).
TLP_RANK: dict[TLP, int] = {tlp: i for i, tlp in enumerate(reversed(TLP))}


class SourceReliability(enum.StrEnum):
    """Europol 4x4: reliability of the source."""

    A = "A"  # no doubt of authenticity, trustworthiness and competence
    B = "B"  # source has proved reliable in most instances
    C = "C"  # source has proved unreliable in most instances
    X = "X"  # reliability cannot be assessed


class InfoAccuracy(enum.IntEnum):
    """Europol 4x4: accuracy of the information."""

    KNOWN_TRUE = 1  # known to be true without reservation
    KNOWN_PERSONALLY = 2  # known personally to the source, not to the official
    NOT_KNOWN_PERSONALLY = 3  # not known personally to the source, corroborated
    CANNOT_BE_ASSESSED = 4


class Urgency(enum.StrEnum):
    ROUTINE = "routine"
    PRIORITY = "priority"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return _URGENCY_RANK[self]


_URGENCY_RANK = {u: i for i, u in enumerate(Urgency)}


class UrgencyReason(enum.StrEnum):
    """Tool 4.7's criteria for an urgent request."""

    RISK_TO_VICTIM = "risk_to_victim"
    SUSPECT_ESCAPING = "suspect_escaping"
    EVIDENCE_LOST = "evidence_lost"
    ASSETS_LOST = "assets_lost"


class Purpose(enum.StrEnum):
    """What information may be used for (the Europol H0 idea: named crimes only)."""

    SMUGGLING_OF_MIGRANTS = "smuggling_of_migrants"
    TRAFFICKING_IN_PERSONS = "trafficking_in_persons"
    DOCUMENT_FRAUD = "document_fraud"
    ORGANIZED_CRIME = "organized_crime"
    MONEY_LAUNDERING = "money_laundering"
    CORRUPTION = "corruption"
    VICTIM_PROTECTION = "victim_protection"
    BORDER_MANAGEMENT = "border_management"
    INTELLIGENCE_ANALYSIS = "intelligence_analysis"
    INVESTIGATION = "investigation"
    PROSECUTION = "prosecution"


# `Header.kind` is typed with this Literal rather than `Kind` so that both msgspec (which
# validates it and exports a JSON Schema enum) and mypy accept `kind="intel_report"`,
# as the code written against schema 1.0 does. A test keeps it equal to `Kind`.
KindName = Literal[
    "intel_report",
    "alert",
    "information_request",
    "document_verification_request",
    "nationality_verification_request",
    "vessel_request",
    "mla_request",
    "extradition_request",
    "reply",
    "acknowledgment",
    "consent_request",
    "consent_decision",
    "forward_notice",
    "use_declaration",
    "purge_receipt",
    "amendment",
    "withdrawal",
    "amendment_receipt",
]


class Kind(enum.StrEnum):
    """Body kinds: the value of the body's tag `kind`, repeated in the signed header so
    the broker can route on it without reading the body. Pass `Kind.X.value` (or the
    plain string) to `Header(kind=...)`."""

    INTEL_REPORT = "intel_report"
    ALERT = "alert"
    INFORMATION_REQUEST = "information_request"
    DOCUMENT_VERIFICATION_REQUEST = "document_verification_request"
    NATIONALITY_VERIFICATION_REQUEST = "nationality_verification_request"
    VESSEL_REQUEST = "vessel_request"
    MLA_REQUEST = "mla_request"
    EXTRADITION_REQUEST = "extradition_request"
    REPLY = "reply"
    ACKNOWLEDGMENT = "acknowledgment"
    CONSENT_REQUEST = "consent_request"
    CONSENT_DECISION = "consent_decision"
    FORWARD_NOTICE = "forward_notice"
    USE_DECLARATION = "use_declaration"
    PURGE_RECEIPT = "purge_receipt"
    AMENDMENT = "amendment"
    WITHDRAWAL = "withdrawal"
    AMENDMENT_RECEIPT = "amendment_receipt"


class PersonRole(enum.StrEnum):
    SUSPECT = "suspect"
    FACILITATOR = "facilitator"  # driver, guide, forger, corrupt official: not the organizer
    VICTIM = "victim"  # of trafficking in persons
    SMUGGLED_MIGRANT = "smuggled_migrant"  # object of the conduct (Protocol art. 5): not liable
    WITNESS = "witness"


class Sex(enum.StrEnum):
    """ICAO 9303 sex field: F, M, or X (unspecified)."""

    F = "F"
    M = "M"
    X = "X"


class DocumentStatus(enum.StrEnum):
    """Protocol art. 3(c) "fraudulent travel or identity document", one value per limb,
    plus art. 10(1)(c)'s theft of blank documents."""

    GENUINE = "genuine"
    FALSELY_MADE = "falsely_made"  # 3(c)(i): counterfeit
    ALTERED = "altered"  # 3(c)(i): altered in some material way
    IMPROPERLY_OBTAINED = "improperly_obtained"  # 3(c)(ii): misrepresentation, corruption, duress
    IMPOSTOR = "impostor"  # 3(c)(iii): used by a person other than the rightful holder
    STOLEN_BLANK = "stolen_blank"  # 10(1)(c): theft of blank documents
    LOST_OR_STOLEN = "lost_or_stolen"  # reported to INTERPOL SLTD
    UNKNOWN = "unknown"  # not yet examined


class PointRole(enum.StrEnum):
    """Protocol art. 10(1)(a): embarkation and destination points, and what lies between."""

    EMBARKATION = "embarkation"
    TRANSIT = "transit"
    DESTINATION = "destination"


class TransportMode(enum.StrEnum):
    """The same values as `Topics.transport_modes`, so a route can fill the topics."""

    LAND = "land"
    SEA = "sea"
    AIR = "air"
    RAIL = "rail"
    FOOT = "foot"
    MIXED = "mixed"


class ConcealmentMethod(enum.StrEnum):
    """Protocol art. 10(1)(d): means and methods of concealment."""

    VEHICLE_COMPARTMENT = "vehicle_compartment"
    CARGO_CONTAINER = "cargo_container"
    TRUCK_LOAD = "truck_load"
    VESSEL_HOLD = "vessel_hold"
    AIRCRAFT_HOLD = "aircraft_hold"
    ON_PERSON = "on_person"
    FALSE_IDENTITY = "false_identity"  # hidden in plain sight, on fraudulent documents
    OTHER = "other"


class MethodAspect(enum.StrEnum):
    """What part of a group's modus operandi a note describes."""

    RECRUITMENT = "recruitment"
    TRANSPORT = "transport"
    PAYMENT = "payment"
    COMMUNICATION = "communication"
    DOCUMENT_FRAUD = "document_fraud"
    CORRUPTION = "corruption"
    EXPLOITATION = "exploitation"
    COUNTER_SURVEILLANCE = "counter_surveillance"
    OTHER = "other"


class AlertType(enum.StrEnum):
    """In the manner of INTERPOL notices (toolkit 6.16)."""

    ARREST_SOUGHT = "arrest_sought"  # red: arrest with a view to extradition, on a warrant
    PERSON_INFORMATION = "person_information"  # blue: identity, location, activities
    REPEAT_OFFENDER_WARNING = "repeat_offender_warning"  # green
    MISSING_PERSON = "missing_person"  # yellow
    UNIDENTIFIED_PERSON = "unidentified_person"  # yellow (living) / black (bodies)
    MODUS_OPERANDI = "modus_operandi"  # orange / purple: a new smuggling method


class ResponseTerm(enum.StrEnum):
    """The time a treaty gives the requested State, so a deadline is never invented."""

    EXPEDITIOUSLY = "expeditiously"  # Protocol art. 8(4): vessel registry and boarding
    REASONABLE_TIME = "reasonable_time"  # Protocol art. 13: document verification
    WITHOUT_UNDUE_DELAY = "without_undue_delay"  # Protocol art. 18(3): nationality
    AS_SOON_AS_POSSIBLE = "as_soon_as_possible"  # UNTOC art. 18(24): MLA
    BY_DATE = "by_date"  # `respond_by` is binding; say why in `deadline_reason`
    NONE = "none"


class ProceedingType(enum.StrEnum):
    """UNTOC art. 18(15)(b): what the request relates to."""

    INVESTIGATION = "investigation"
    PROSECUTION = "prosecution"
    JUDICIAL_PROCEEDING = "judicial_proceeding"


class AssistanceType(enum.StrEnum):
    """UNTOC art. 18(3)(a)-(i): the assistance that may be requested."""

    TAKING_EVIDENCE = "taking_evidence"  # (a) evidence or statements
    SERVICE_OF_DOCUMENTS = "service_of_documents"  # (b) judicial documents
    SEARCH_AND_SEIZURE = "search_and_seizure"  # (c) searches, seizures, freezing
    EXAMINING_OBJECTS = "examining_objects"  # (d) objects and sites
    INFORMATION_AND_EXPERTISE = "information_and_expertise"  # (e) items, expert evaluations
    RECORDS = "records"  # (f) government, bank, financial, corporate, business records
    TRACING_PROCEEDS = "tracing_proceeds"  # (g) proceeds, property, instrumentalities
    VOLUNTARY_APPEARANCE = "voluntary_appearance"  # (h) of persons in the requesting State
    OTHER = "other"  # (i) not contrary to the requested State's law


class LegalBasisType(enum.StrEnum):
    """Toolkit 6.6 and 6.8: what a formal request rests on."""

    BILATERAL_TREATY = "bilateral_treaty"
    MULTILATERAL_CONVENTION = "multilateral_convention"  # e.g. UNTOC art. 16 or 18
    REGIONAL_SCHEME = "regional_scheme"
    DOMESTIC_LAW = "domestic_law"
    RECIPROCITY = "reciprocity"
    COMITY = "comity"


class ExtraditionStatus(enum.StrEnum):
    ACCUSED = "accused"
    CONVICTED = "convicted"


class EvidenceForm(enum.StrEnum):
    """Toolkit 6.6: the form the requested State requires, established in advance."""

    SWORN_EVIDENCE = "sworn_evidence"
    UNSWORN_EVIDENCE = "unsworn_evidence"
    SWORN_STATEMENT_OF_CASE = "sworn_statement_of_case"
    UNSWORN_STATEMENT_OF_CASE = "unsworn_statement_of_case"
    RECORD_OF_CASE = "record_of_case"


class TrialPresence(enum.StrEnum):
    """Toolkit 6.6, convicted: how the person took part in the proceedings."""

    SUMMONED_IN_PERSON = "summoned_in_person"
    OTHERWISE_INFORMED = "otherwise_informed"
    LEGALLY_REPRESENTED = "legally_represented"
    RETRIAL_AVAILABLE = "retrial_available"  # tried in absentia, may be retried


class VesselAsk(enum.StrEnum):
    """Protocol art. 8: what a requesting State may ask a flag State."""

    CONFIRM_REGISTRY = "confirm_registry"  # art. 8(2), (4)
    BOARD = "board"  # art. 8(2)(a)
    SEARCH = "search"  # art. 8(2)(b)
    TAKE_MEASURES = "take_measures"  # art. 8(2)(c): with respect to vessel, persons, cargo
    ASSISTANCE = "assistance"  # art. 8(1): help suppress the use of the vessel


class VesselType(enum.StrEnum):
    FISHING = "fishing"
    CARGO = "cargo"
    TANKER = "tanker"
    PASSENGER = "passenger"
    PLEASURE = "pleasure"
    INFLATABLE = "inflatable"
    WOODEN_BOAT = "wooden_boat"
    OTHER = "other"


class ReplyStatus(enum.StrEnum):
    ANSWERED = "answered"
    PARTIAL = "partial"
    NO_RECORD = "no_record"
    DECLINED = "declined"  # UNTOC art. 18(23): reasons shall be given
    POSTPONED = "postponed"  # UNTOC art. 18(25)


class Verification(enum.StrEnum):
    """The outcome of an art. 8, 13 or 18(3) verification."""

    CONFIRMED = "confirmed"
    NOT_CONFIRMED = "not_confirmed"
    INCONCLUSIVE = "inconclusive"


class Decision(enum.StrEnum):
    GRANTED = "granted"
    GRANTED_WITH_CONDITIONS = "granted_with_conditions"
    REFUSED = "refused"


class AckStatus(enum.StrEnum):
    RECEIVED = "received"
    ACCEPTED = "accepted"  # taken up for execution
    NEEDS_INFORMATION = "needs_information"  # UNTOC art. 18(16)


class ConsentScope(enum.StrEnum):
    """Uses beyond the originator's restrictions that need its consent."""

    EVIDENTIAL_USE = "evidential_use"  # lifts H1 / no_evidential_use
    ONWARD_DISSEMINATION = "onward_dissemination"  # lifts H2 / no_onward_dissemination
    EXECUTIVE_ACTION = "executive_action"  # answers consult_before_action
    PUBLIC_DISCLOSURE = "public_disclosure"  # lifts no_public_disclosure
    SHOW_TO_SUSPECT = "show_to_suspect"  # lifts not_to_suspects
    OTHER_PURPOSE = "other_purpose"  # a purpose outside `purposes`
    EXTENDED_RETENTION = "extended_retention"


class UseKind(enum.StrEnum):
    """What a holder declares it does with the information. Each restriction that
    governs a use is checked against the kind declared (policies/cedar/restrictions.cedar):
    evidence and disclosure_to_court under no_evidential_use, executive_action under
    consult_before_action, public_disclosure under no_public_disclosure, show_to_suspect
    under not_to_suspects; each is refused without the originator's consent
    (`USE_CONSENT`). New kinds (e.g. an export) are added here and, if a restriction
    governs them, in `USE_CONSENT` and the Cedar policies."""

    ANALYSIS = "analysis"
    INVESTIGATIVE_LEAD = "investigative_lead"
    EVIDENCE = "evidence"
    EXECUTIVE_ACTION = "executive_action"  # arrest, search, seizure, boarding...
    DISCLOSURE_TO_COURT = "disclosure_to_court"
    PUBLIC_DISCLOSURE = "public_disclosure"  # press, public report, publication
    SHOW_TO_SUSPECT = "show_to_suspect"  # e.g. put to a suspect in an interview
    EXPORT = "export"  # out of orcon, as STIX or MISP (clients/interop): onward dissemination


# The consent that lifts the restriction governing a use kind (evidential use is also
# declared by the `evidential` flag, whatever the kind).
USE_CONSENT: dict[UseKind, ConsentScope] = {
    UseKind.EVIDENCE: ConsentScope.EVIDENTIAL_USE,
    UseKind.DISCLOSURE_TO_COURT: ConsentScope.EVIDENTIAL_USE,
    UseKind.EXECUTIVE_ACTION: ConsentScope.EXECUTIVE_ACTION,
    UseKind.PUBLIC_DISCLOSURE: ConsentScope.PUBLIC_DISCLOSURE,
    UseKind.SHOW_TO_SUSPECT: ConsentScope.SHOW_TO_SUSPECT,
    # An export hands the information on outside orcon: the holder needs the originator's
    # onward-dissemination consent naming the holder itself.
    UseKind.EXPORT: ConsentScope.ONWARD_DISSEMINATION,
}


class PurgeReason(enum.StrEnum):
    EXPIRED = "expired"  # restrictions.expires_at passed
    RETENTION_ELAPSED = "retention_elapsed"  # restrictions.destroy_after_days elapsed
    ORIGINATOR_REQUEST = "originator_request"
    LEGAL_OBLIGATION = "legal_obligation"
