"""The registry as Cedar entities (Agency → Country → Group → Agreement), and what
makes two agencies indistinguishable to the policies, so that a wide fan-out is decided
once per class of recipients instead of once per recipient."""

from __future__ import annotations

from typing import Any

from policies.federation import Federation, Role

NS = "Orcon"

# Agency id → what Cedar can observe of it: its attributes and every ancestor entity.
AgencyClasses = dict[str, tuple[tuple[Any, ...], frozenset[tuple[str, str]]]]


def entity_ref(kind: str, ident: str) -> dict[str, Any]:
    """An entity as a value inside a request context."""
    return {"__entity": {"type": f"{NS}::{kind}", "id": ident}}


def uid(kind: str, ident: str) -> dict[str, str]:
    """An entity as the principal or resource of a request."""
    return {"type": f"{NS}::{kind}", "id": ident}


def build_entities(fed: Federation) -> list[dict[str, Any]]:
    """The registry as Cedar entities: Agency → Country → Group → Agreement."""
    parents: dict[tuple[str, str], set[tuple[str, str]]] = {}

    def add(child: tuple[str, str], parent: tuple[str, str] | None = None) -> None:
        parents.setdefault(child, set())
        if parent is not None:
            parents[child].add(parent)
            parents.setdefault(parent, set())

    for ag in fed.agreements:
        add(("Agreement", ag.id))
    for g in fed.groups:
        add(("Group", g.id))
        for m in g.members:
            if fed.is_agency(m):
                add(("Agency", m), ("Group", g.id))
            else:
                add(("Country", m), ("Group", g.id))
    for a in fed.agencies:
        add(("Agency", a.id), ("Country", a.country))
        for gid in a.groups:
            add(("Agency", a.id), ("Group", gid))
    for ag in fed.agreements:
        if ag.default_basis and not ag.parties:
            for a in fed.agencies:
                add(("Agency", a.id), ("Agreement", ag.id))
        for p in ag.parties:
            kind = "Agency" if fed.is_agency(p) else "Group" if fed.is_group(p) else "Country"
            add((kind, p), ("Agreement", ag.id))

    out: list[dict[str, Any]] = []
    for (kind, ident), ps in sorted(parents.items()):
        ent: dict[str, Any] = {
            "uid": uid(kind, ident),
            "attrs": {},
            "parents": [uid(k, i) for k, i in sorted(ps)],
        }
        if kind == "Agency":
            a = fed.agency(ident)
            ent["attrs"] = {
                "clearance": a.clearance.rank,
                "auditor": a.is_auditor,
                "focal_point": Role.FOCAL_POINT in a.roles,
            }
        out.append(ent)
    return out


def agency_classes(entities: list[dict[str, Any]]) -> AgencyClasses:
    """Agency id → (attributes, every ancestor entity). Two agencies are
    indistinguishable to the policies when their attributes agree and their ancestors
    agree on every entity a policy or the request context can name: policies refer to
    principals only through `in`, `==` and attributes. See `class_key`.
    Evaluating one representative per class is what makes a wide fan-out cheap."""
    def key(ref: dict[str, str]) -> tuple[str, str]:
        return (ref["type"].rsplit("::", 1)[-1], ref["id"])

    parents = {key(e["uid"]): [key(p) for p in e["parents"]] for e in entities}
    out: AgencyClasses = {}
    for e in entities:
        me = key(e["uid"])
        if me[0] != "Agency":
            continue
        seen: set[tuple[str, str]] = set()
        stack = list(parents[me])
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(parents.get(node, ()))
        out[me[1]] = (tuple(sorted(e["attrs"].items())), frozenset(seen))
    return out


def named_entities(value: Any) -> set[tuple[str, str]]:
    """Every entity (type without namespace, id) referenced anywhere in a context."""
    found: set[tuple[str, str]] = set()
    if isinstance(value, dict):
        ref = value.get("__entity")
        if isinstance(ref, dict):
            found.add((str(ref.get("type", "")).rsplit("::", 1)[-1], str(ref.get("id"))))
        for v in value.values():
            found |= named_entities(v)
    elif isinstance(value, list):
        for v in value:
            found |= named_entities(v)
    return found


def class_key(classes: AgencyClasses, agency: str, visible: set[tuple[str, str]]) -> Any:
    """Equal keys ⇒ equal Cedar decisions for one context. An agency the context
    names is its own class; otherwise only its attributes and the ancestors that
    some policy or the context can observe (Agreements and Groups are named by
    basis and restriction rules; a Country only when named) distinguish it."""
    if ("Agency", agency) in visible:
        return ("agency", agency)
    entry = classes.get(agency)
    if entry is None:
        return ("agency", agency)
    attrs, ancestors = entry
    observable = frozenset(
        a for a in ancestors if a[0] in ("Agreement", "Group") or a in visible
    )
    return (attrs, observable)
