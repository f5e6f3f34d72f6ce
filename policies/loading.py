"""Loading one policy version: the Cedar schema, the policy files and one rendered
basis per agreement, each parsed and checked against the schema with errors pinned to
a file and line, and the registry as entities. The version is the content hash of all
of it, so a decision can always name the exact rules it was made under."""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cedarpy

from policies.context import micros
from policies.entities import AgencyClasses, agency_classes, build_entities
from policies.federation import Agreement, Federation, canonical_bytes

DEFAULT_POLICY_DIR = Path(__file__).parent / "cedar"
SCHEMA_FILE = "orcon.cedarschema"
BASIS_TEMPLATE_FILE = "basis.cedar.tmpl"


class PolicyLoadError(ValueError):
    """A policy file (or the schema, or a rendered basis) that Cedar refuses."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source = source
        self.line = line
        super().__init__(f"{source}:{line}: {message}")


def _split_policies(text: str) -> list[tuple[int, str]]:
    """Split Cedar text into (start line, policy text) at top-level `;`, skipping
    strings and comments, so an error can be pinned to a file and line."""
    out: list[tuple[int, str]] = []
    i, n, line = 0, len(text), 1
    start, start_line, seen_code = 0, 1, False
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif c == '"':
            if not seen_code:
                start_line, seen_code = line, True
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                elif text[i] == "\n":
                    line += 1
                i += 1
        elif c == ";":
            out.append((start_line, text[start : i + 1]))
            start, seen_code = i + 1, False
        elif not c.isspace() and not seen_code:
            start_line, seen_code = line, True
        i += 1
    if seen_code:
        out.append((start_line, text[start:]))
    return out


def _parse_file(source: str, text: str, schema: Any) -> None:
    chunks = _split_policies(text)
    for line, chunk in chunks:
        try:
            cedarpy.PolicySet.from_str(chunk)
        except ValueError as e:
            raise PolicyLoadError(source, line, f"invalid Cedar policy: {e}") from None
    result = cedarpy.validate_policies(text, schema)
    if not result.validation_passed:
        err = result.errors[0]
        m = re.fullmatch(r"policy(\d+)", err.policy_id or "")
        line = chunks[int(m.group(1))][0] if m and int(m.group(1)) < len(chunks) else 1
        raise PolicyLoadError(source, line, f"policy does not match the schema: {err.error}")


def _read_schema(policy_dir: Path) -> tuple[str, Any]:
    schema_path = policy_dir / SCHEMA_FILE
    try:
        schema_text = schema_path.read_text()
        return schema_text, cedarpy.Schema.from_str(schema_text)
    except OSError as e:
        raise PolicyLoadError(str(schema_path), 1, f"cannot be read ({e.strerror})") from None
    except ValueError as e:
        raise PolicyLoadError(str(schema_path), 1, f"invalid Cedar schema: {e}") from None


def _cedar_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def render_basis(template: str, agreement: Agreement) -> str:
    """The permit policy for one agreement (ids are pattern-checked by the loader, so
    they cannot break out of the string literal)."""
    end = agreement.ends_at
    return string.Template(template).substitute(
        id=agreement.id,
        categories=_cedar_list(str(c) for c in agreement.categories),
        kinds_condition=(
            f"{_cedar_list(agreement.kinds)}.contains(context.kind)" if agreement.kinds else "true"
        ),
        purposes_condition=(
            f"!context.purposes.isEmpty() && "
            f"{_cedar_list(str(p) for p in agreement.purposes)}.containsAll(context.purposes)"
            if agreement.purposes
            else "true"
        ),
        valid_from=str(micros(agreement.starts_at)),
        valid_until_condition=(f"context.now < {micros(end)}" if end is not None else "true"),
    )


@dataclass(frozen=True, slots=True)
class LoadedPolicies:
    """The parsed Cedar handles of one policy version and what is derived from them."""

    version: str
    policies: Any
    schema: Any
    entities: Any
    basis_order: dict[str, int]  # basis rule id → preference (lower first)
    thresholds: tuple[int, ...]  # agreement validity edges, µs
    classes: AgencyClasses
    # Entities the policy text itself names (besides Agreements, always observable).
    named_in_policies: frozenset[tuple[str, str]]


_ENTITY_LITERAL = re.compile(r"(?:\w+::)?(Agency|Country|Group)::\"([^\"]*)\"")


def load_policies(fed: Federation, policy_dir: Path) -> LoadedPolicies:
    schema_text, schema = _read_schema(policy_dir)
    h = hashlib.sha256()
    h.update(b"schema\0" + schema_text.encode() + b"\0")
    texts: list[str] = []
    for path in sorted(policy_dir.glob("*.cedar")):
        text = path.read_text()
        _parse_file(str(path), text, schema)
        h.update(path.name.encode() + b"\0" + text.encode() + b"\0")
        texts.append(text)

    template_path = policy_dir / BASIS_TEMPLATE_FILE
    template = template_path.read_text()
    h.update(b"template\0" + template.encode() + b"\0")
    for ag in fed.agreements:
        try:
            rendered = render_basis(template, ag)
        except (KeyError, ValueError) as e:
            raise PolicyLoadError(str(template_path), 1, f"bad placeholder {e}") from None
        _parse_file(f"{template_path} (agreement {ag.id})", rendered, schema)
        texts.append(rendered)
    h.update(b"registry\0" + canonical_bytes(fed))

    policies = cedarpy.PolicySet.from_str("\n".join(texts))
    entity_list = build_entities(fed)
    entities = cedarpy.Entities.from_json_str(json.dumps(entity_list), schema)
    # A specific agreement explains a permit better than a default basis.
    ordered = [a for a in fed.agreements if not a.default_basis] + [
        a for a in fed.agreements if a.default_basis
    ]
    edges: set[int] = set()
    for a in fed.agreements:
        edges.add(micros(a.starts_at))
        end = a.ends_at
        if end is not None:
            edges.add(micros(end))
    return LoadedPolicies(
        version=h.hexdigest()[:16],
        policies=policies,
        schema=schema,
        entities=entities,
        basis_order={f"basis.{a.id}": i for i, a in enumerate(ordered)},
        thresholds=tuple(sorted(edges)),
        classes=agency_classes(entity_list),
        named_in_policies=frozenset(
            (m.group(1), m.group(2)) for t in texts for m in _ENTITY_LITERAL.finditer(t)
        ),
    )
