"""Rules on the building blocks of bodies (persons, documents, vessels, routes, groups,
legal bases) that a msgspec type cannot express: code lists, cross-field rules, check
digits, and that the local refs of one message are unique and resolve."""

from __future__ import annotations

from schemas.bodies import Alert, IntelReport
from schemas.code_rules import (
    Errors,
    countries,
    country,
    narrative,
    order,
)
from schemas.codes import (
    LegalBasisType,
    PointRole,
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
    Person,
    Place,
    Route,
    Vessel,
)
from schemas.errors import FieldError
from schemas.iso import COUNTRIES


def place(p: Place | None, path: str, errs: Errors) -> None:
    if p is not None and p.country not in COUNTRIES:
        country(p.country, path + ".country", errs)


def address(a: Address, path: str, errs: Errors) -> None:
    if a.country not in COUNTRIES:
        country(a.country, path + ".country", errs)


def document(d: IdentityDocument, path: str, errs: Errors) -> None:
    if d.issuing_state not in COUNTRIES:
        country(d.issuing_state, path + ".issuing_state", errs)
    if d.nationality is not None and d.nationality not in COUNTRIES:
        country(d.nationality, path + ".nationality", errs)
    # ICAO 9303 parts 5 and 6 reserve "V" as second character of card codes for visas.
    if len(d.type) == 2 and d.type[0] in "ACI" and d.type[1] == "V":
        errs.append(
            FieldError(path + ".type", "icao9303", f"'{d.type}' is not an ICAO 9303 card code")
        )
    order(d.issued_on, d.expires_on, path + ".expires_on", "expires_on is before issued_on", errs)
    narrative(d.findings, path + ".findings", errs)


def person(p: Person, path: str, errs: Errors) -> None:
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
        countries(p.nationalities, path + ".nationalities", errs)
    for i, d in enumerate(p.documents):
        document(d, f"{path}.documents[{i}]", errs)
    for i, a in enumerate(p.addresses):
        address(a, f"{path}.addresses[{i}]", errs)
    place(p.place_of_birth, path + ".place_of_birth", errs)
    place(p.last_known_location, path + ".last_known_location", errs)
    if p.born_on is not None and p.birth_year is not None and p.born_on.year != p.birth_year:
        errs.append(
            FieldError(path + ".birth_year", "birth-year", "birth_year contradicts born_on")
        )
    narrative(p.description, path + ".description", errs)


def persons(persons: list[Person], path: str, errs: Errors) -> None:
    for i, p in enumerate(persons):
        person(p, f"{path}[{i}]", errs)


def vessel(v: Vessel, path: str, errs: Errors) -> None:
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
        country(v.flag, path + ".flag", errs)
    if v.imo is not None and not imo_check_digit_ok(v.imo):
        errs.append(
            FieldError(path + ".imo", "imo-check-digit", f"IMO {v.imo} fails its check digit")
        )
    place(v.home_port, path + ".home_port", errs)


def imo_check_digit_ok(imo: str) -> bool:
    """IMO ship numbers: the 7th digit is the last digit of 7*d1 + 6*d2 + ... + 2*d6."""
    return sum(int(imo[i]) * (7 - i) for i in range(6)) % 10 == int(imo[6])


def conveyance(c: Conveyance, path: str, errs: Errors) -> None:
    if isinstance(c, Vessel):
        vessel(c, path, errs)
    elif c.registration_country is not None and c.registration_country not in COUNTRIES:
        country(c.registration_country, path + ".registration_country", errs)


def conveyances(cs: list[Conveyance], path: str, errs: Errors) -> None:
    for i, c in enumerate(cs):
        conveyance(c, f"{path}[{i}]", errs)


def route(r: Route, path: str, errs: Errors) -> None:
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
        place(pt.place, p + ".place", errs)
    if r.period is not None:
        order(
            r.period.start, r.period.end, path + ".period.end", "period ends before it starts", errs
        )


def group(g: Group, path: str, errs: Errors) -> None:
    if g.active_in:
        countries(g.active_in, path + ".active_in", errs)
    narrative(g.methods, path + ".methods", errs)


def methods(ms: list[MethodNote], path: str, errs: Errors) -> None:
    for i, m in enumerate(ms):
        narrative(m.description, f"{path}[{i}].description", errs)


def concealment(cs: list[Concealment], path: str, errs: Errors) -> None:
    for i, c in enumerate(cs):
        narrative(c.description, f"{path}[{i}].description", errs)
        narrative(c.detection, f"{path}[{i}].detection", errs)


def refs(
    body: IntelReport | Alert,
    groups: list[Group],
    routes: list[Route],
    path: str,
    errs: Errors,
) -> None:
    """Local refs are unique within a message, and every citation resolves."""
    person_refs = {p.ref for p in body.persons}
    convs = {c.ref for c in body.conveyances}
    all_groups = {g.ref for g in groups}
    n = len(body.persons) + len(groups) + len(routes) + len(body.conveyances)
    if len(person_refs) + len(convs) + len(all_groups) + len({r.ref for r in routes}) != n or (
        n > len(person_refs | convs | all_groups | {r.ref for r in routes})
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
            if m not in person_refs:
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


def legal_basis(b: LegalBasis | None, path: str, errs: Errors) -> None:
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


def authority(a: Authority, path: str, errs: Errors) -> None:
    if a.country not in COUNTRIES:
        country(a.country, path + ".country", errs)


def provisions(ps: list[LegalProvision], path: str, errs: Errors) -> None:
    for i, p in enumerate(ps):
        narrative(p.excerpt, f"{path}[{i}].excerpt", errs)
