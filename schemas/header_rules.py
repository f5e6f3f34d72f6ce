"""The signed header's semantic rules (`check_header` / `validate_header`): times,
restriction consistency, TLP:RED addressing, recipients sorted and unique, a known kind,
urgency reasons, topic codes and languages."""

from __future__ import annotations

from schemas.bodies import KINDS
from schemas.code_rules import Errors, aware, conditions, countries, lang
from schemas.codes import (
    TLP,
    Urgency,
)
from schemas.errors import FieldError, SchemaError
from schemas.header import Header

__all__ = ["check_header", "validate_header"]

# ICAO 9303: P passport, I/A/C identity cards, V visa.
_ICAO_FIRST = frozenset("ACIPV")


def check_header(header: Header) -> list[FieldError]:
    """Every semantic error of `header`, in order."""
    errors: Errors = []
    r = header.restrictions
    created_ok = aware(header.created_at, "header.created_at", errors)
    nb_ok = aware(r.not_before, "header.restrictions.not_before", errors)
    ex_ok = aware(r.expires_at, "header.restrictions.expires_at", errors)
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
        conditions(r.conditions, "header.restrictions.conditions", errors)
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
    if header.kind not in KINDS:
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
        countries(t.route_countries, "header.topics.route_countries", errors)
    if t.nationalities:
        countries(t.nationalities, "header.topics.nationalities", errors)
    for i, dt in enumerate(t.document_types):
        if dt[0] not in _ICAO_FIRST:
            errors.append(
                FieldError(
                    f"header.topics.document_types[{i}]",
                    "icao9303",
                    f"'{dt}' is not an ICAO 9303 document code (P, I, A, C or V first)",
                )
            )
    for i, tag in enumerate(header.languages):
        lang(tag, f"header.languages[{i}]", errors)
    return errors


def validate_header(header: Header) -> None:
    """Semantic rules that a type cannot express. Raises SchemaError with every failure."""
    errors = check_header(header)
    if errors:
        raise SchemaError(errors)
