"""Coded vocabularies. Codes, not prose, so content crosses languages and legal systems."""

from __future__ import annotations

import enum


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
