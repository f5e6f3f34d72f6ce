"""The federation registry: agencies, groups and agreements, loaded from TOML.

Restrictions name parties with plain names (`release_to = ["KH", "COMMIT"]`), so
countries (ISO 3166-1 alpha-2), agency ids and group ids share one namespace; the
loader refuses any registry in which a name could mean two things.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import msgspec

from policies.countries import ISO_COUNTRIES
from schemas.codes import Category, Level, Purpose, Urgency
from schemas.ids import PARTY_NAME_PATTERN
from schemas.iso import COUNTRY_CODE_PATTERN

NAME_PATTERN = PARTY_NAME_PATTERN
_NAME_RE = re.compile(NAME_PATTERN)
# "ALL" is the audience keyword for every agency; it can never be a registry name.
RESERVED_NAMES = frozenset({"ALL"})

Name = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN)]
CountryCode = Annotated[str, msgspec.Meta(pattern=COUNTRY_CODE_PATTERN)]
Kind = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}\Z")]


class AgencyType(enum.StrEnum):
    POLICE = "police"
    BORDER = "border"
    IMMIGRATION = "immigration"
    PROSECUTION = "prosecution"
    CENTRAL_AUTHORITY = "central_authority"
    NCB = "ncb"
    LIAISON_OFFICE = "liaison_office"
    INTERNATIONAL_ORGANIZATION = "international_organization"
    AUDIT = "audit"


class Role(enum.StrEnum):
    LIAISON = "liaison"  # sends and receives intelligence
    FOCAL_POINT = "focal_point"  # may subscribe to alerts
    AUDITOR = "auditor"  # reads metadata and proofs, never content
    OPERATOR = "operator"  # runs broker / NATS; grants no access to messages


class Subscription(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """A focal point's alert filter; empty lists match everything."""

    kinds: list[Kind] = []
    categories: list[Category] = []
    route_countries: list[CountryCode] = []
    nationalities: list[CountryCode] = []
    document_types: list[str] = []
    min_urgency: Urgency = Urgency.ROUTINE


class Agency(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    id: Name
    name: str
    country: CountryCode
    type: AgencyType
    roles: list[Role]
    clearance: Level
    groups: list[Name] = []
    subscriptions: list[Subscription] = []

    @property
    def is_auditor(self) -> bool:
        return Role.AUDITOR in self.roles


class Group(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    id: Name
    name: str
    members: list[Name] = []  # countries and/or agency ids


class Agreement(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """A legal basis for exchange. `valid_until` is the last day in force (inclusive,
    UTC). Empty `kinds` / `purposes` mean "any"; `categories` must be explicit so
    that an agreement never silently covers more than it says. A `default_basis`
    with no parties covers every agency of the federation."""

    id: Name
    title: str
    categories: list[Category]
    valid_from: date
    legal_basis: str
    parties: list[Name] = []
    kinds: list[Kind] = []
    purposes: list[Purpose] = []
    valid_until: date | None = None
    default_basis: bool = False

    @property
    def starts_at(self) -> datetime:
        return datetime(self.valid_from.year, self.valid_from.month, self.valid_from.day,
                        tzinfo=UTC)

    @property
    def ends_at(self) -> datetime | None:
        """First instant no longer in force, or None if open-ended."""
        if self.valid_until is None:
            return None
        d = self.valid_until + timedelta(days=1)
        return datetime(d.year, d.month, d.day, tzinfo=UTC)

    def in_force(self, now: datetime) -> bool:
        end = self.ends_at
        return self.starts_at <= now and (end is None or now < end)


class Federation(msgspec.Struct, forbid_unknown_fields=True, frozen=True, dict=True):
    name: str
    agencies: list[Agency] = []
    groups: list[Group] = []
    agreements: list[Agreement] = []

    # Lookups are derived once; the struct is frozen so they cannot go stale.
    @cached_property
    def _agency_index(self) -> dict[str, Agency]:
        return {a.id: a for a in self.agencies}

    @cached_property
    def _group_index(self) -> dict[str, Group]:
        return {g.id: g for g in self.groups}

    @cached_property
    def _group_members(self) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = {g.id: set() for g in self.groups}
        for g in self.groups:
            for m in g.members:
                if m in self._agency_index:
                    out[g.id].add(m)
                else:
                    out[g.id].update(a.id for a in self.agencies if a.country == m)
        for a in self.agencies:
            for gid in a.groups:
                out.setdefault(gid, set()).add(a.id)
        return {k: frozenset(v) for k, v in out.items()}

    def agency(self, agency_id: str) -> Agency:
        """The agency with this id; KeyError if it is not registered."""
        return self._agency_index[agency_id]

    def get_agency(self, agency_id: str) -> Agency | None:
        return self._agency_index.get(agency_id)

    def group(self, group_id: str) -> Group:
        return self._group_index[group_id]

    def is_agency(self, name: str) -> bool:
        return name in self._agency_index

    def is_group(self, name: str) -> bool:
        return name in self._group_index

    def members_of(self, group_id: str) -> frozenset[str]:
        """Agency ids in the group: listed directly, through their country, or by the
        agency's own `groups` entry."""
        return self._group_members.get(group_id, frozenset())

    def agencies_of_country(self, country: str) -> list[str]:
        return [a.id for a in self.agencies if a.country == country]

    def groups_of(self, agency_id: str) -> frozenset[str]:
        return frozenset(g for g, m in self._group_members.items() if agency_id in m)

    def name_matches(self, name: str, agency_id: str) -> bool:
        """Whether a registry name (agency, country or group) designates the agency."""
        a = self._agency_index.get(agency_id)
        if a is None:
            return False
        return name == a.id or name == a.country or agency_id in self.members_of(name)

    def agreement_parties(self, agreement: Agreement) -> frozenset[str]:
        """Agency ids covered by the agreement."""
        if agreement.default_basis and not agreement.parties:
            return frozenset(self._agency_index)
        return frozenset(
            a for a in self._agency_index
            if any(self.name_matches(p, a) for p in agreement.parties)
        )


class FederationError(ValueError):
    """A registry problem, named by file, entry and field, in one sentence."""

    def __init__(self, source: str, entry: str, field: str, rule: str) -> None:
        self.source = source
        self.entry = entry
        self.field = field
        self.rule = rule
        where = f"{entry}.{field}" if entry and field else (entry or field or "(top level)")
        super().__init__(f"{source}: {where}: {rule}")


_PATH_RE = re.compile(r"at `\$(?P<path>[^`]*)`")


def _structural_error(source: str, raw: Any, err: msgspec.ValidationError) -> FederationError:
    msg = str(err)
    m = _PATH_RE.search(msg)
    rule = _PATH_RE.sub("", msg).rstrip(" -")
    path = m.group("path") if m else ""
    # `$.agencies[3].country` → entry "agencies[3] (KH-AHTJP)", field "country"
    pm = re.match(r"^\.(\w+)\[(\d+)\](?:\.(.*))?$", path)
    if pm:
        section, idx, rest = pm.group(1), int(pm.group(2)), pm.group(3) or ""
        entry = f"{section}[{idx}]"
        try:
            ident = raw[section][idx].get("id")
        except (KeyError, IndexError, TypeError, AttributeError):
            ident = None
        if isinstance(ident, str):
            entry += f" ({ident})"
        return FederationError(source, entry, rest or "(entry)", rule)
    return FederationError(source, "", path.lstrip(".") or "(document)", rule)


def _check(source: str, fed: Federation) -> None:
    def err(section: str, i: int, ident: str, field: str, rule: str) -> FederationError:
        return FederationError(source, f"{section}[{i}] ({ident})", field, rule)

    seen: dict[str, str] = {}  # name → where it was first defined
    named: list[tuple[str, list[str]]] = [
        ("agencies", [a.id for a in fed.agencies]),
        ("groups", [g.id for g in fed.groups]),
    ]
    for section, idents in named:
        for i, ident in enumerate(idents):
            if ident in RESERVED_NAMES:
                raise err(section, i, ident, "id", f"'{ident}' is reserved for the audience")
            if ident in ISO_COUNTRIES:
                raise err(section, i, ident, "id",
                          f"'{ident}' collides with the ISO 3166 country code {ident}")
            if ident in seen:
                raise err(section, i, ident, "id",
                          f"'{ident}' is already defined as {seen[ident]}")
            seen[ident] = f"{section}[{i}]"

    agency_ids = {a.id for a in fed.agencies}
    group_ids = {g.id for g in fed.groups}

    for i, a in enumerate(fed.agencies):
        if a.country not in ISO_COUNTRIES:
            raise err("agencies", i, a.id, "country",
                      f"'{a.country}' is not an ISO 3166-1 alpha-2 country code")
        if not a.roles:
            raise err("agencies", i, a.id, "roles", "an agency needs at least one role")
        for g in a.groups:
            if g not in group_ids:
                raise err("agencies", i, a.id, "groups", f"unknown group '{g}'")
        if a.subscriptions and Role.FOCAL_POINT not in a.roles:
            raise err("agencies", i, a.id, "subscriptions",
                      "only agencies with the focal_point role may subscribe")

    for i, grp in enumerate(fed.groups):
        for m in grp.members:
            if m not in agency_ids and m not in ISO_COUNTRIES:
                kind = "group" if m in group_ids else "name"
                raise err("groups", i, grp.id, "members",
                          f"unknown {kind} '{m}' (members are countries or agency ids)")

    agreement_ids: dict[str, int] = {}
    for i, ag in enumerate(fed.agreements):
        if ag.id in agreement_ids:
            raise err("agreements", i, ag.id, "id",
                      f"'{ag.id}' is already defined as agreements[{agreement_ids[ag.id]}]")
        agreement_ids[ag.id] = i
        if not ag.parties and not ag.default_basis:
            raise err("agreements", i, ag.id, "parties",
                      "an agreement needs at least one party")
        for p in ag.parties:
            if p not in agency_ids and p not in group_ids and p not in ISO_COUNTRIES:
                raise err("agreements", i, ag.id, "parties", f"unknown agency or group '{p}'")
        if not ag.categories:
            raise err("agreements", i, ag.id, "categories",
                      "an agreement must list the categories it covers")
        if ag.valid_until is not None and ag.valid_until < ag.valid_from:
            raise err("agreements", i, ag.id, "valid_until",
                      f"{ag.valid_until} is before valid_from {ag.valid_from}")


def federation_from_dict(data: Mapping[str, Any], source: str = "<federation>") -> Federation:
    try:
        fed = msgspec.convert(data, type=Federation)
    except msgspec.ValidationError as e:
        raise _structural_error(source, data, e) from None
    _check(source, fed)
    return fed


def load_federation(path: str | Path) -> Federation:
    p = Path(path)
    source = str(p)
    try:
        raw_bytes = p.read_bytes()
    except OSError as e:
        raise FederationError(source, "", "(file)", f"cannot be read ({e.strerror})") from None
    try:
        raw = msgspec.toml.decode(raw_bytes)
    except msgspec.DecodeError as e:
        raise FederationError(source, "", "(document)", f"is not valid TOML ({e})") from None
    except UnicodeDecodeError as e:  # msgspec decodes the UTF-8 itself
        raise FederationError(source, "", "(document)",
                              f"is not UTF-8 (byte {e.start}: {e.reason})") from None
    try:
        fed = msgspec.toml.decode(raw_bytes, type=Federation)
    except msgspec.ValidationError as e:
        raise _structural_error(source, raw, e) from None
    _check(source, fed)
    return fed


def canonical_bytes(fed: Federation) -> bytes:
    """Stable encoding for content hashing (policy version)."""
    return msgspec.json.encode(msgspec.to_builtins(fed), order="sorted")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, str):
        return msgspec.json.encode(v).decode()
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dumps(fed: Federation) -> str:
    """TOML text that `load_federation` reads back to an equal Federation."""
    builtins = msgspec.to_builtins(fed, builtin_types=(date,))
    lines = [f"name = {_toml_value(builtins['name'])}"]
    for section in ("agencies", "groups", "agreements"):
        for item in builtins.get(section, []):
            lines += ["", f"[[{section}]]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def with_agency(toml: bytes, agency: Agency, source: str = "registry") -> tuple[bytes, Federation]:
    """`toml` with one more `[[agencies]]` table appended (the operator's text, comments
    and order kept) and the validated result. FederationError if the id is taken or the
    agency does not validate against the rest of the registry."""
    builtins = msgspec.to_builtins(agency, builtin_types=(date,))
    lines = ["", "[[agencies]]"] + [f"{k} = {_toml_value(v)}" for k, v in builtins.items()]
    text = toml.decode("utf-8").rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    try:
        raw = msgspec.toml.decode(text.encode())
    except msgspec.DecodeError as e:
        raise FederationError(source, "", "(document)", f"is not valid TOML ({e})") from None
    fed = federation_from_dict(raw, source=source)
    return text.encode(), fed
