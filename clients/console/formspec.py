"""Compose forms built from the message schemas, never kept by hand per kind.

Each form is derived from msgspec's JSON Schema of the Struct (the same document
`schemas/jsonschema/` commits), so a field added to a Struct appears in the console
without touching it. A form posts flat names (`b.persons.0.family_name`); `collect` walks
the same schema tree to rebuild the nested document, which `schemas.validate_json` then
checks in full (structure, code lists, cross-field rules) and reports every error with
its path and rule. Nothing here decides validity: the schemas do.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec

import schemas
from policies.acts import ACT_KINDS
from schemas import codes
from schemas.bodies import BODY_TYPES

# The header fields a sender sets (the rest: id, sender, key, time, come from the SDK).
HEADER_FIELDS = ("recipients", "audience", "category", "level", "urgency",
                 "urgency_reasons", "evaluation", "topics")
# Lists of registry names get a picker of the federation's parties, not a text box.
PARTY_LISTS = frozenset({"h.recipients", "h.audience", "h.restrictions.release_to",
                         "h.restrictions.exclude"})
MISSING: Any = msgspec.UNSET

_INDEX = re.compile(r"\[(\d+)\]")


def composable_kinds() -> list[str]:
    """Kinds a person composes; acts (use, consent, acknowledgment...) have their own
    buttons on a message, because they must name the message they act on."""
    return [str(tp.__struct_config__.tag) for tp in BODY_TYPES
            if tp.__struct_config__.tag not in ACT_KINDS]


@dataclass
class Field:
    name: str  # the form name, a dotted path
    key: str
    label: str
    widget: str  # object list text textarea number date datetime checkbox select checks
    #               lines parties hidden
    required: bool = False
    optional: bool = False  # an optional object: omitted when left empty
    options: list[str] = field(default_factory=list)
    integer: bool = False
    constraints: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    children: list[Field] = field(default_factory=list)
    item: dict[str, Any] | None = None  # lists of objects: the item schema
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # tagged unions
    value: str = ""  # hidden fields: the constant (a union item's tag)
    option_labels: dict[str, str] = field(default_factory=dict)
    tag: str = ""  # tagged unions: the field naming the variant
    id_suffix: str = ""  # a union's chosen variant shares its name, not its element id

    @property
    def id(self) -> str:
        return "f-" + self.name.replace(".", "-") + self.id_suffix

    @property
    def singular(self) -> str:
        """What one item of a list is called ("persons" -> "person")."""
        words = self.key.replace("_", " ")
        return words[:-1] if words.endswith("s") and not words.endswith("ss") else words

    @property
    def hint(self) -> str:
        """The rules a person needs while typing, in words."""
        c = self.constraints
        parts = []
        if "minLength" in c and c["minLength"] > 1:
            parts.append(f"at least {c['minLength']} characters")
        if "maxLength" in c and self.widget in ("text", "textarea"):
            parts.append(f"at most {c['maxLength']} characters")
        if "pattern" in c:
            parts.append(f"pattern {c['pattern']}")
        if "minimum" in c and "maximum" in c:
            parts.append(f"{c['minimum']} to {c['maximum']}")
        if "minItems" in c:
            parts.append(f"at least {c['minItems']}")
        if self.widget == "datetime":
            parts.append("UTC")
        if self.widget == "lines":
            parts.append("one per line")
        return "; ".join(parts)


# msgspec gives a bare `datetime` (these restriction fields) no "format" in its schema.
_BARE_DATETIMES = frozenset({"not_before", "expires_at"})


def _code_enum(node: dict[str, Any]) -> type[enum.Enum] | None:
    found = getattr(codes, str(node.get("title", "")), None)
    return found if isinstance(found, type) and issubclass(found, enum.Enum) else None


def _ordered(node: dict[str, Any]) -> list[str]:
    """Options in the code list's own order (levels by rank), not alphabetical."""
    values = [str(v) for v in node["enum"]]
    e = _code_enum(node)
    if e is None:
        return values
    order = [str(m.value) for m in e]
    return sorted(values, key=lambda v: order.index(v) if v in order else len(order))


def _option_labels(node: dict[str, Any]) -> dict[str, str]:
    """Words for terse codes (category "a" -> "a: routes")."""
    e = _code_enum(node)
    if e is None:
        return {}
    out = {}
    for m in e:
        words = m.name.lower().replace("_", " ")
        if words != str(m.value).lower().replace("_", " "):
            out[str(m.value)] = f"{m.value}: {words}"
    return out


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


@cache
def _schema(kind: str) -> dict[str, Any]:
    tp = next(t for t in BODY_TYPES if t.__struct_config__.tag == kind)
    return msgspec.json.schema(tp)


@cache
def _header_schema() -> dict[str, Any]:
    return msgspec.json.schema(schemas.Header)


class Builder:
    """Turns one JSON Schema document (with its `$defs`) into Field trees."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.defs: dict[str, Any] = document.get("$defs", {})

    def deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self.defs[node["$ref"].rsplit("/", 1)[-1]]
        return node

    def build(self, node: dict[str, Any], name: str, key: str, required: bool) -> Field:
        optional = False
        if "anyOf" in node:
            branches = [b for b in node["anyOf"] if b.get("type") != "null"]
            if len(branches) == 1:
                optional = len(branches) < len(node["anyOf"])
                node = {**branches[0], **{k: v for k, v in node.items() if k != "anyOf"}}
        node = self.deref(node)
        f = Field(name=name, key=key, label=_label(key), widget="text", required=required,
                  description=str(node.get("description", "")).split("\n")[0])
        if "anyOf" in node and "discriminator" in node:
            # A tagged union (extradition `stage`: accused or convicted): pick a variant.
            f.widget, f.optional = "union", optional or not required
            self._variants(f, node)
            return f
        f.constraints = {k: node[k] for k in ("minLength", "maxLength", "pattern", "minimum",
                                              "maximum", "minItems") if k in node}
        if "enum" in node:
            values = node["enum"]
            if len(values) == 1:
                f.widget, f.value = "hidden", str(values[0])
            else:
                f.widget, f.options = "select", _ordered(node)
                f.option_labels = _option_labels(node)
                f.integer = all(isinstance(v, int) for v in values)
            return f
        kind = node.get("type")
        if kind == "object":
            f.widget, f.optional = "object", optional or not required
            req = set(node.get("required", []))
            f.children = [self.build(sub, f"{name}.{k}", k, k in req)
                          for k, sub in node.get("properties", {}).items()]
            f.children.sort(key=lambda c: (not c.required, c.widget in ("object", "list")))
        elif kind == "array":
            item = node.get("items", {})
            target = self.deref(item)
            if "anyOf" in target and "discriminator" in target:
                f.widget = "list"
                self._variants(f, target)
                return f
            if target.get("type") == "object":
                f.widget, f.item = "list", item
            elif "enum" in target:
                f.widget, f.options = "checks", _ordered(target)
                f.option_labels = _option_labels(target)
                f.integer = all(isinstance(v, int) for v in target["enum"])
            elif name in PARTY_LISTS:
                f.widget = "parties"
            else:
                f.widget = "lines"
                f.constraints.update({k: target[k] for k in ("pattern", "maxLength")
                                      if k in target})
        elif kind == "boolean":
            f.widget = "checkbox"
        elif kind in ("integer", "number"):
            f.widget, f.integer = "number", kind == "integer"
        elif kind == "string":
            fmt = node.get("format")
            if fmt is None and key in _BARE_DATETIMES and not f.constraints:
                fmt = "date-time"
            f.widget = ("date" if fmt == "date" else "datetime" if fmt == "date-time" else
                        "textarea" if node.get("maxLength", 0) > 2000 else "text")
        return f

    def _variants(self, f: Field, union: dict[str, Any]) -> None:
        f.tag = str(union["discriminator"]["propertyName"])
        for ref in union["anyOf"]:
            target = self.deref(ref)
            f.variants[str(target["properties"][f.tag]["enum"][0])] = ref

    def variant(self, f: Field, variant: str) -> Field:
        """The fields of one variant of a single tagged union (named like the union)."""
        out = self.build(f.variants[variant], f.name, f.key, f.required)
        out.label = f"{f.label}: {variant.replace('_', ' ')}"
        out.optional = False
        out.id_suffix = "-chosen"
        return out

    def item(self, f: Field, index: int, variant: str | None = None) -> Field:
        """One item of a list of objects (for a tagged union: of `variant`)."""
        node = f.variants[variant] if variant is not None else f.item
        assert node is not None
        out = self.build(node, f"{f.name}.{index}", str(index), True)
        out.label = f"{_label(variant or f.key.rstrip('s') or f.key)} {index + 1}"
        return out


def body_form(kind: str) -> Field:
    """The whole form of one body kind (`kind` is the tag: a hidden constant)."""
    doc = _schema(kind)
    b = Builder(doc)
    root = b.build(doc, "b", "body", True)
    root.label = kind.replace("_", " ")
    return root


def header_form() -> Field:
    """The header fields a sender sets, and every restriction."""
    doc = _header_schema()
    b = Builder(doc)
    node = b.deref(doc)
    props = node["properties"]
    req = set(node.get("required", []))
    root = Field(name="h", key="header", label="header", widget="object", required=True)
    root.children = [b.build(props[k], f"h.{k}", k, k in req) for k in HEADER_FIELDS]
    restrictions = b.build(props["restrictions"], "h.restrictions", "restrictions", True)
    restrictions.optional = False
    root.children.append(restrictions)
    return root


def find(root: Field, name: str, builder: Builder) -> Field:
    """The field at a dotted path, through list items (`b.routes.0.points`)."""
    parts = name.split(".")
    if parts[0] != root.name:
        raise KeyError(name)
    node = root
    for part in parts[1:]:
        if node.widget == "list" and part.isdigit() and node.item is not None:
            node = builder.item(node, int(part))
            continue
        nxt = next((c for c in node.children if c.key == part), None)
        if nxt is None:
            raise KeyError(name)
        node = nxt
    return node


def item_builder(kind: str | None) -> Builder:
    return Builder(_schema(kind) if kind else _header_schema())


# ---- form values -> document -------------------------------------------------------------


class FormValues:
    """The posted fields, as lists (a checkbox group posts one name many times)."""

    def __init__(self, items: Sequence[tuple[str, str]]) -> None:
        self.multi: dict[str, list[str]] = {}
        for k, v in items:
            self.multi.setdefault(k, []).append(v)

    def get(self, name: str) -> str:
        v = self.multi.get(name)
        return v[-1].strip() if v else ""

    def getlist(self, name: str) -> list[str]:
        return [v.strip() for v in self.multi.get(name, []) if v.strip()]

    def indices(self, prefix: str) -> list[int]:
        found = set()
        for k in self.multi:
            if k.startswith(prefix + "."):
                head = k[len(prefix) + 1:].split(".", 1)[0]
                if head.isdigit():
                    found.add(int(head))
        return sorted(found)


def _scalar(f: Field, raw: str) -> Any:
    if f.integer:
        try:
            return int(raw)
        except ValueError:
            return raw  # left for the schema to name the rule
    if f.widget == "number":
        try:
            return float(raw)
        except ValueError:
            return raw
    if f.widget == "datetime" and len(raw) == 16:  # <input type=datetime-local>: minutes
        return raw + ":00Z"
    return raw


def collect(f: Field, form: FormValues, builder: Builder) -> Any:
    """The document for `f` from the posted values; MISSING when nothing was given."""
    w = f.widget
    if w == "hidden":
        return f.value
    if w == "object":
        out = {}
        for c in f.children:
            v = collect(c, form, builder)
            if v is not MISSING:
                out[c.key] = v
        meaningful = {k: v for k, v in out.items()
                      if not any(c.key == k and c.widget == "hidden" for c in f.children)}
        if not meaningful and f.optional:
            return MISSING
        return out
    if w == "union":
        chosen = form.get(f"{f.name}.{f.tag}")
        if chosen not in f.variants:
            return MISSING
        return collect(builder.variant(f, chosen), form, builder)
    if w == "list":
        items = []
        for i in form.indices(f.name):
            variant = form.get(f"{f.name}.{i}.{f.tag}") if f.variants else None
            if f.variants and variant not in f.variants:
                continue
            items.append(collect(builder.item(f, i, variant), form, builder))
        return items or MISSING
    if w in ("checks", "parties"):
        values = form.getlist(f.name)
        if w == "parties":
            values += [p.strip().upper() for p in form.get(f.name + ".other").split(",")
                       if p.strip()]
        return [_scalar(f, v) for v in dict.fromkeys(values)] or MISSING
    if w == "lines":
        lines = [ln.strip() for ln in form.get(f.name).splitlines() if ln.strip()]
        return lines or MISSING
    if w == "checkbox":
        return True if form.get(f.name) else MISSING
    raw = form.get(f.name)
    return _scalar(f, raw) if raw else MISSING


def form_name(path: str) -> str:
    """`body.persons[0].family_name` (a FieldError path) -> `b.persons.0.family_name`."""
    path = _INDEX.sub(r".\1", path)
    if path.startswith("body"):
        return "b" + path[4:]
    if path.startswith("header"):
        return "h" + path[6:]
    return path


def errors_by_field(errors: Sequence[schemas.FieldError]) -> Mapping[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in errors:
        out.setdefault(form_name(e.path), []).append(f"{e.message} [{e.rule}]")
    return out
