"""What a body holds, gathered for export: its title, its narratives and its entities.

The exporters map entities, not body kinds: every kind (an alert, an MLA request, a
reply) is walked the same way, so a field added to a kind later is exported wherever it
uses an existing entity type.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

import schemas
from schemas.entities import (
    Address,
    Aircraft,
    Group,
    IdentityDocument,
    Narrative,
    Person,
    Place,
    RoutePoint,
    Vehicle,
    Vessel,
)

Conveyance = Vehicle | Vessel | Aircraft


@dataclass
class Content:
    kind: str
    title: str
    lang: str
    narratives: list[Narrative] = field(default_factory=list)
    persons: list[Person] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    places: list[tuple[str, Place]] = field(default_factory=list)  # (what it is, place)
    conveyances: list[Conveyance] = field(default_factory=list)
    documents: list[IdentityDocument] = field(default_factory=list)  # not a person's own
    phones: list[str] = field(default_factory=list)  # not a person's own
    addresses: list[Address] = field(default_factory=list)  # not a person's own


def _children(obj: msgspec.Struct) -> Iterator[tuple[str, Any]]:
    for name in obj.__struct_fields__:
        yield name, getattr(obj, name)


def gather(body: schemas.Body) -> Content:
    kind = schemas.body_kind(body)
    title = getattr(body, "title", None) or kind.replace("_", " ")
    c = Content(kind=kind, title=str(title), lang="en")

    def visit(name: str, value: Any, context: str) -> None:
        if isinstance(value, list):
            for v in value:
                visit(name, v, context)
            return
        if isinstance(value, Narrative):
            c.narratives.append(value)
        elif isinstance(value, Person):
            c.persons.append(value)  # a person's documents, phones, places stay on it
        elif isinstance(value, Group):
            c.groups.append(value)
        elif isinstance(value, Vehicle | Vessel | Aircraft):
            c.conveyances.append(value)
            if isinstance(value, Vessel) and value.home_port is not None:
                c.places.append((f"home port of {value.ref}", value.home_port))
        elif isinstance(value, IdentityDocument):
            c.documents.append(value)
        elif isinstance(value, Place):
            c.places.append((context or name, value))
        elif isinstance(value, RoutePoint):
            c.places.append((f"{value.role} point of {context}".strip(), value.place))
        elif isinstance(value, Address):
            c.addresses.append(value)
        elif isinstance(value, msgspec.Struct):
            ref = getattr(value, "ref", None)
            for n, v in _children(value):
                visit(n, v, str(ref) if ref else context)
        elif name in ("number",) and isinstance(value, str) and value.startswith("+"):
            c.phones.append(value)

    for n, v in _children(body):
        visit(n, v, "")
    if c.narratives:
        c.lang = c.narratives[0].lang
    return c


def person_name(p: Person) -> str:
    name = " ".join(x for x in (p.given_names, p.family_name) if x)
    return name or f"unidentified person {p.ref}"


def text_of(c: Content) -> str:
    """The narratives, in body order, for a description field."""
    return "\n\n".join(n.text for n in c.narratives) or c.title
