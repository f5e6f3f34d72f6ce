"""Rules on the building blocks of bodies (persons, documents, vessels, routes, groups,
legal bases) that a msgspec type cannot express: code lists, cross-field rules, check
digits, and that the local refs of one message are unique and resolve."""

from __future__ import annotations

import operator

from schemas.bodies import Alert, IntelReport
from schemas.code_rules import (
    GOOD_REFS,
    Errors,
    at,
    countries,
    country,
    currency_ok,
    misshapen,
    narrative,
    order,
    phone_ok,
    ref_ok,
    refs_shape,
    registration_ok,
)
from schemas.codes import (
    LegalBasisType,
    PointRole,
)
from schemas.entities import (
    CURRENCY_PATTERN,
    PHONE_PATTERN,
    REF_PATTERN,
    REGISTRATION_PATTERN,
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
    Vehicle,
    Vessel,
)
from schemas.errors import FieldError
from schemas.iso import COUNTRIES, ISO639_1

_REF = operator.attrgetter("ref")
# Enum members read once: a class attribute of an Enum costs several times a global.
_EMBARKATION = PointRole.EMBARKATION
_TRANSIT = PointRole.TRANSIT
_DESTINATION = PointRole.DESTINATION
_NAMED_INSTRUMENT = (
    LegalBasisType.BILATERAL_TREATY,
    LegalBasisType.MULTILATERAL_CONVENTION,
    LegalBasisType.REGIONAL_SCHEME,
)


def place(p: Place | None, path: str, errs: Errors) -> None:
    if p is not None and p.country not in COUNTRIES:
        country(p.country, path + ".country", errs)


def address(a: Address, path: str, errs: Errors) -> None:
    if a.country not in COUNTRIES:
        country(a.country, path + ".country", errs)


def document(d: IdentityDocument, path: str, errs: Errors, i: int = -1) -> None:
    """`path` is the document's, or (`i` >= 0) that of the list it is item `i` of."""
    if d.issuing_state not in COUNTRIES:
        country(d.issuing_state, at(path, i) + ".issuing_state", errs)
    if d.nationality is not None and d.nationality not in COUNTRIES:
        country(d.nationality, at(path, i) + ".nationality", errs)
    # ICAO 9303 parts 5 and 6 reserve "V" as second character of card codes for visas.
    if len(d.type) == 2 and d.type[0] in "ACI" and d.type[1] == "V":
        errs.append(
            FieldError(
                at(path, i) + ".type", "icao9303", f"'{d.type}' is not an ICAO 9303 card code"
            )
        )
    if d.issued_on is not None and d.expires_on is not None and d.expires_on < d.issued_on:
        order(
            d.issued_on,
            d.expires_on,
            at(path, i) + ".expires_on",
            "expires_on is before issued_on",
            errs,
        )
    f = d.findings
    if f is not None and f.lang not in ISO639_1:
        narrative(f, at(path, i) + ".findings", errs)


def documents(ds: list[IdentityDocument], path: str, errs: Errors) -> None:
    """Every document of the list at `path`."""
    for i, d in enumerate(ds):
        document(d, path, errs, i)


def person(p: Person, path: str, errs: Errors, i: int = -1) -> None:
    """`path` is the person's, or (`i` >= 0) that of the list it is item `i` of."""
    # Each check is guarded by its cheapest test, and a path is built only for an error:
    # these rules run on every person of every message.
    if p.ref not in GOOD_REFS and not ref_ok(p.ref):
        misshapen(REF_PATTERN, at(path, i) + ".ref", errs)
    if (
        p.family_name is None
        and p.given_names is None
        and not p.aliases
        and not p.documents
        and p.description is None
    ):
        errs.append(
            FieldError(
                at(path, i),
                "identifiable",
                "a person needs a name, an alias, a document or a description",
            )
        )
    if p.nationalities and not COUNTRIES.issuperset(p.nationalities):
        countries(p.nationalities, at(path, i) + ".nationalities", errs)
    if p.phones:
        for j, phone in enumerate(p.phones):
            if not phone_ok(phone):
                misshapen(PHONE_PATTERN, f"{at(path, i)}.phones[{j}]", errs)
    if p.documents:
        documents(p.documents, at(path, i) + ".documents", errs)
    if p.addresses:
        for j, a in enumerate(p.addresses):
            if a.country not in COUNTRIES:
                country(a.country, f"{at(path, i)}.addresses[{j}].country", errs)
    where = p.place_of_birth
    if where is not None and where.country not in COUNTRIES:
        country(where.country, at(path, i) + ".place_of_birth.country", errs)
    where = p.last_known_location
    if where is not None and where.country not in COUNTRIES:
        country(where.country, at(path, i) + ".last_known_location.country", errs)
    if p.born_on is not None and p.birth_year is not None and p.born_on.year != p.birth_year:
        errs.append(
            FieldError(at(path, i) + ".birth_year", "birth-year", "birth_year contradicts born_on")
        )
    if p.description is not None and p.description.lang not in ISO639_1:
        narrative(p.description, at(path, i) + ".description", errs)


def persons(ps: list[Person], path: str, errs: Errors) -> None:
    """Every person of the list at `path`."""
    for i, p in enumerate(ps):
        person(p, path, errs, i)


def vessel(v: Vessel, path: str, errs: Errors, i: int = -1) -> None:
    """`path` is the vessel's, or (`i` >= 0) that of the list it is item `i` of."""
    if v.ref not in GOOD_REFS and not ref_ok(v.ref):
        misshapen(REF_PATTERN, at(path, i) + ".ref", errs)
    if v.flag is None and not v.stateless:
        errs.append(
            FieldError(
                at(path, i) + ".flag",
                "vessel-flag",
                "a vessel needs a flag State or stateless: true",
            )
        )
    elif v.flag is not None and v.stateless:
        errs.append(
            FieldError(
                at(path, i) + ".stateless",
                "vessel-flag",
                "a vessel with a flag cannot be stateless",
            )
        )
    elif v.flag is not None and v.flag not in COUNTRIES:
        country(v.flag, at(path, i) + ".flag", errs)
    if v.imo is not None and not imo_check_digit_ok(v.imo):
        errs.append(
            FieldError(
                at(path, i) + ".imo", "imo-check-digit", f"IMO {v.imo} fails its check digit"
            )
        )
    home = v.home_port
    if home is not None and home.country not in COUNTRIES:
        country(home.country, at(path, i) + ".home_port.country", errs)


def imo_check_digit_ok(imo: str) -> bool:
    """IMO ship numbers: the 7th digit is the last digit of 7*d1 + 6*d2 + ... + 2*d6."""
    return sum(int(imo[i]) * (7 - i) for i in range(6)) % 10 == int(imo[6])


def conveyance(c: Conveyance, path: str, errs: Errors, i: int = -1) -> None:
    """`path` is the conveyance's, or (`i` >= 0) that of the list it is item `i` of."""
    if isinstance(c, Vessel):
        vessel(c, path, errs, i)
        return
    if c.ref not in GOOD_REFS and not ref_ok(c.ref):
        misshapen(REF_PATTERN, at(path, i) + ".ref", errs)
    if c.registration_country is not None and c.registration_country not in COUNTRIES:
        country(c.registration_country, at(path, i) + ".registration_country", errs)
    if (
        isinstance(c, Vehicle)
        and c.registration is not None
        and not registration_ok(c.registration)
    ):
        misshapen(REGISTRATION_PATTERN, at(path, i) + ".registration", errs)


def conveyances(cs: list[Conveyance], path: str, errs: Errors) -> None:
    """Every conveyance of the list at `path`."""
    for i, c in enumerate(cs):
        conveyance(c, path, errs, i)


def route(r: Route, path: str, errs: Errors, i: int = -1) -> None:
    """`path` is the route's, or (`i` >= 0) that of the list it is item `i` of."""
    if r.ref not in GOOD_REFS and not ref_ok(r.ref):
        misshapen(REF_PATTERN, at(path, i) + ".ref", errs)
    points = r.points
    last = len(points) - 1
    for j, pt in enumerate(points):
        want = _TRANSIT if 0 < j < last else _EMBARKATION if j == 0 else _DESTINATION
        if pt.role != want:
            errs.append(
                FieldError(
                    f"{at(path, i)}.points[{j}].role",
                    "route-order",
                    "a route runs embarkation, then transit points, then destination;"
                    f" point {j} should be {want.value}",
                )
            )
        if pt.place.country not in COUNTRIES:
            country(pt.place.country, f"{at(path, i)}.points[{j}].place.country", errs)
    if r.fee_per_person is not None and not currency_ok(r.fee_per_person.currency):
        misshapen(CURRENCY_PATTERN, at(path, i) + ".fee_per_person.currency", errs)
    if r.groups and not GOOD_REFS.issuperset(r.groups):
        refs_shape(r.groups, at(path, i) + ".groups", errs)
    period = r.period
    if (
        period is not None
        and period.start is not None
        and period.end is not None
        and period.end < period.start
    ):
        order(
            period.start,
            period.end,
            at(path, i) + ".period.end",
            "period ends before it starts",
            errs,
        )


def group(g: Group, path: str, errs: Errors, i: int = -1) -> None:
    """`path` is the group's, or (`i` >= 0) that of the list it is item `i` of."""
    if g.ref not in GOOD_REFS and not ref_ok(g.ref):
        misshapen(REF_PATTERN, at(path, i) + ".ref", errs)
    if g.members and not GOOD_REFS.issuperset(g.members):
        refs_shape(g.members, at(path, i) + ".members", errs)
    if g.active_in and not COUNTRIES.issuperset(g.active_in):
        countries(g.active_in, at(path, i) + ".active_in", errs)
    if g.methods is not None and g.methods.lang not in ISO639_1:
        narrative(g.methods, at(path, i) + ".methods", errs)


def methods(ms: list[MethodNote], path: str, errs: Errors) -> None:
    for i, m in enumerate(ms):
        if m.description is not None and m.description.lang not in ISO639_1:
            narrative(m.description, f"{path}[{i}].description", errs)


def concealment(cs: list[Concealment], path: str, errs: Errors) -> None:
    for i, c in enumerate(cs):
        if c.conveyance is not None and c.conveyance not in GOOD_REFS and not ref_ok(c.conveyance):
            misshapen(REF_PATTERN, f"{path}[{i}].conveyance", errs)
        if c.description is not None and c.description.lang not in ISO639_1:
            narrative(c.description, f"{path}[{i}].description", errs)
        if c.detection is not None and c.detection.lang not in ISO639_1:
            narrative(c.detection, f"{path}[{i}].detection", errs)


def refs(
    body: IntelReport | Alert,
    groups: list[Group],
    routes: list[Route],
    path: str,
    errs: Errors,
) -> None:
    """Local refs are unique within a message, and every citation resolves."""
    # map() with attrgetter: no comprehension frame per set (these run on every report).
    ps = body.persons
    cs = body.conveyances
    person_refs = set(map(_REF, ps))
    conveyance_refs = set(map(_REF, cs))
    group_refs = set(map(_REF, groups))
    everything = person_refs | conveyance_refs
    everything |= group_refs
    if routes:
        everything.update(map(_REF, routes))
    if len(everything) != len(ps) + len(groups) + len(routes) + len(cs):
        _duplicate_refs(body, groups, routes, path, errs)  # rare: only now build paths
    for g in groups:
        if not person_refs.issuperset(g.members):
            _unresolved(groups, "groups", "members", person_refs, "person", path, errs)
            break
    for r in routes:
        if not group_refs.issuperset(r.groups):
            _unresolved(routes, "routes", "groups", group_refs, "group", path, errs)
            break
    for i, c in enumerate(body.concealment):
        if c.conveyance is not None and c.conveyance not in conveyance_refs:
            errs.append(
                FieldError(
                    f"{path}.concealment[{i}].conveyance",
                    "ref-resolves",
                    f"no conveyance has ref '{c.conveyance}'",
                )
            )


def _duplicate_refs(
    body: IntelReport | Alert,
    groups: list[Group],
    routes: list[Route],
    path: str,
    errs: Errors,
) -> None:
    seen: dict[str, str] = {}
    items = [(p.ref, f"{path}.persons[{i}].ref") for i, p in enumerate(body.persons)]
    items += [(g.ref, f"{path}.groups[{i}].ref") for i, g in enumerate(groups)]
    items += [(r.ref, f"{path}.routes[{i}].ref") for i, r in enumerate(routes)]
    items += [(c.ref, f"{path}.conveyances[{i}].ref") for i, c in enumerate(body.conveyances)]
    for ref, p in items:
        if ref in seen:
            errs.append(FieldError(p, "ref-unique", f"ref '{ref}' is already used at {seen[ref]}"))
        else:
            seen[ref] = p


def _unresolved(
    items: list[Group] | list[Route],
    kind: str,
    field: str,
    known: set[str],
    what: str,
    path: str,
    errs: Errors,
) -> None:
    """Every citation in `field` of `items` (the list `kind`: groups' members, routes'
    groups) that names no `what` of the message, in order."""
    for i, item in enumerate(items):
        cited: list[str] = getattr(item, field)
        for j, ref in enumerate(cited):
            if ref not in known:
                errs.append(
                    FieldError(
                        f"{path}.{kind}[{i}].{field}[{j}]",
                        "ref-resolves",
                        f"no {what} has ref '{ref}'",
                    )
                )


def legal_basis(b: LegalBasis | None, path: str, errs: Errors) -> None:
    if b is not None and b.instrument is None and b.type in _NAMED_INSTRUMENT:
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
