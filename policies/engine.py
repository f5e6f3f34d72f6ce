"""The policy engine: Cedar decides, this module feeds it and explains the outcome.

One `PolicyEngine` holds pre-parsed Cedar handles (policies, schema, registry
entities) for one *policy version*: the content hash of the policy files and the
registry. Message attributes go in the request context, so a fan-out to N
recipients is one batched Cedar call over handles parsed once.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cedarpy
import msgspec

from policies.countries import ISO_COUNTRIES
from policies.federation import Agreement, Federation, Role, Subscription, canonical_bytes
from policies.names import RULE_RESTRICTION, Vocabulary, restriction_errors
from schemas.codes import Level, Urgency
from schemas.header import Header
from schemas.restrictions import Restrictions, effective_restrictions

DEFAULT_POLICY_DIR = Path(__file__).parent / "cedar"
SCHEMA_FILE = "orcon.cedarschema"
BASIS_TEMPLATE_FILE = "basis.cedar.tmpl"

NS = "Orcon"
RULE_NO_BASIS = "default.no-basis"
RULE_DENY = "default.deny"
RULE_UNKNOWN_AGENCY = "registry.unknown-agency"
RULE_UNKNOWN_SENDER = "registry.unknown-sender"
RULE_ENGINE_ERROR = "engine.error"
RULE_UNRESOLVED = RULE_RESTRICTION  # a restriction names what the registry does not know

# When several forbids apply, the reported rule is the first in this list (the most
# specific to the recipient and to the sender's explicit wishes); all are listed in
# Decision.rules. Forbids not named here (operator additions) come after, sorted.
FORBID_PRECEDENCE: tuple[str, ...] = (
    "restriction.self",
    "role.auditor",
    "restriction.exclude",
    "restriction.release_to",
    "restriction.no_onward_dissemination",
    "restriction.no_evidential_use",
    "restriction.purpose",
    "restriction.no_public_disclosure",
    "restriction.not_to_suspects",
    "restriction.consult_before_action",
    "restriction.expires_at",
    "restriction.not_before",
    "restriction.clearance",
)

_CONTENT_ACTIONS = ("receive", "forward", "use")


class PolicyLoadError(ValueError):
    """A policy file (or the schema, or a rendered basis) that Cedar refuses."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source = source
        self.line = line
        super().__init__(f"{source}:{line}: {message}")


@dataclass(frozen=True, slots=True)
class Decision:
    recipient: str
    allowed: bool
    rule: str  # the deciding policy id
    reason: str  # one sentence
    policy_version: str
    rules: tuple[str, ...] = field(default=())  # every determining policy id, sorted


class Consent(msgspec.Struct, frozen=True):
    """An originator consent, already verified (signature, originator) by the caller.
    It lifts exactly one restriction: `forward` lifts no_onward_dissemination for
    that third party, `use` lifts no_evidential_use for that holder, and
    `public_disclosure`, `show_to_suspect`, `executive_action` lift no_public_disclosure,
    not_to_suspects and consult_before_action for that holder's use of that kind."""

    action: str
    recipient: str


# ---------------------------------------------------------------------------
# Loading


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


def _cedar_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def _micros(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError("naive datetime: orcon times are timezone-aware UTC")
    delta = t - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


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
        valid_from=str(_micros(agreement.starts_at)),
        valid_until_condition=(f"context.now < {_micros(end)}" if end is not None else "true"),
    )


def _entity(kind: str, ident: str) -> dict[str, Any]:
    return {"__entity": {"type": f"{NS}::{kind}", "id": ident}}


def _uid(kind: str, ident: str) -> dict[str, str]:
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
            "uid": _uid(kind, ident),
            "attrs": {},
            "parents": [_uid(k, i) for k, i in sorted(ps)],
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


@dataclass(frozen=True, slots=True)
class _Loaded:
    version: str
    policies: Any
    schema: Any
    entities: Any
    basis_order: dict[str, int]  # basis rule id → preference (lower first)
    thresholds: tuple[int, ...]  # agreement validity edges, µs
    # Agency id → what Cedar can observe of it: its attributes and every ancestor.
    classes: dict[str, tuple[tuple[Any, ...], frozenset[tuple[str, str]]]]
    # Entities the policy text itself names (besides Agreements, always observable).
    named_in_policies: frozenset[tuple[str, str]]


def _agency_classes(
    entities: list[dict[str, Any]],
) -> dict[str, tuple[tuple[Any, ...], frozenset[tuple[str, str]]]]:
    """Agency id → (attributes, every ancestor entity). Two agencies are
    indistinguishable to the policies when their attributes agree and their ancestors
    agree on every entity a policy or the request context can name: policies refer to
    principals only through `in`, `==` and attributes. See `PolicyEngine._class_key`.
    Evaluating one representative per class is what makes a wide fan-out cheap."""
    def uid(ref: dict[str, str]) -> tuple[str, str]:
        return (ref["type"].rsplit("::", 1)[-1], ref["id"])

    parents = {uid(e["uid"]): [uid(p) for p in e["parents"]] for e in entities}
    out: dict[str, tuple[Any, ...]] = {}
    for e in entities:
        me = uid(e["uid"])
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


def _named_entities(value: Any) -> set[tuple[str, str]]:
    """Every entity (type without namespace, id) referenced anywhere in a context."""
    found: set[tuple[str, str]] = set()
    if isinstance(value, dict):
        ref = value.get("__entity")
        if isinstance(ref, dict):
            found.add((str(ref.get("type", "")).rsplit("::", 1)[-1], str(ref.get("id"))))
        for v in value.values():
            found |= _named_entities(v)
    elif isinstance(value, list):
        for v in value:
            found |= _named_entities(v)
    return found


_ENTITY_LITERAL = re.compile(r"(?:\w+::)?(Agency|Country|Group)::\"([^\"]*)\"")


def _load(fed: Federation, policy_dir: Path) -> _Loaded:
    schema_path = policy_dir / SCHEMA_FILE
    try:
        schema_text = schema_path.read_text()
        schema = cedarpy.Schema.from_str(schema_text)
    except OSError as e:
        raise PolicyLoadError(str(schema_path), 1, f"cannot be read ({e.strerror})") from None
    except ValueError as e:
        raise PolicyLoadError(str(schema_path), 1, f"invalid Cedar schema: {e}") from None

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
        edges.add(_micros(a.starts_at))
        end = a.ends_at
        if end is not None:
            edges.add(_micros(end))
    return _Loaded(
        version=h.hexdigest()[:16],
        policies=policies,
        schema=schema,
        entities=entities,
        basis_order={f"basis.{a.id}": i for i, a in enumerate(ordered)},
        thresholds=tuple(sorted(edges)),
        classes=_agency_classes(entity_list),
        named_in_policies=frozenset(
            (m.group(1), m.group(2)) for t in texts for m in _ENTITY_LITERAL.finditer(t)
        ),
    )


def subscription_matches(sub: Subscription, header: Header) -> bool:
    """A focal point's filter against the signed header: every non-empty list must
    share a value with the header (empty matches all), and the urgency must reach
    `min_urgency`. A filter on topics matches nothing when the header has no topics."""
    t = header.topics
    return (
        (not sub.kinds or header.kind in sub.kinds)
        and (not sub.categories or header.category in sub.categories)
        and (not sub.route_countries or bool(set(sub.route_countries) & set(t.route_countries)))
        and (not sub.document_types or bool(set(sub.document_types) & set(t.document_types)))
        and (not sub.nationalities or bool(set(sub.nationalities) & set(t.nationalities)))
        and Urgency(header.urgency).rank >= Urgency(sub.min_urgency).rank
    )


# ---------------------------------------------------------------------------
# The engine


def _fmt_time(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _tlp_note(raw: Restrictions, field_name: str) -> str:
    """" (TLP:RED)" when the label, not the sender's own flag, sets `field_name`: the
    person refused should learn where the restriction comes from."""
    if raw.tlp is None or getattr(raw, field_name):
        return ""
    return f" (TLP:{raw.tlp!s})"


class PolicyEngine:
    def __init__(
        self,
        federation: Federation,
        policy_dir: Path | None = None,
        *,
        cache_size: int = 200_000,
    ) -> None:
        self._policy_dir = policy_dir or DEFAULT_POLICY_DIR
        self._cache_size = cache_size
        self._cache: dict[tuple[Any, ...], Decision] = {}
        self.federation = federation
        self.vocabulary = Vocabulary(federation)
        self._loaded = _load(federation, self._policy_dir)

    @property
    def version(self) -> str:
        return self._loaded.version

    @property
    def policy_dir(self) -> Path:
        return self._policy_dir

    def reload(self, federation: Federation | None = None, policy_dir: Path | None = None) -> str:
        """Swap in a new registry and/or policy directory; returns the new version.
        The cache is dropped with the old handles: a decision never outlives the
        version it was made under."""
        fed = federation if federation is not None else self.federation
        pdir = policy_dir if policy_dir is not None else self._policy_dir
        loaded = _load(fed, pdir)
        self._cache = {}
        self.federation, self._policy_dir, self._loaded = fed, pdir, loaded
        self.vocabulary = Vocabulary(fed)
        return loaded.version

    def cache_info(self) -> dict[str, int]:
        return {"entries": len(self._cache), "max": self._cache_size}

    # -- audience ---------------------------------------------------------------

    def candidates(self, header: Header) -> list[str]:
        """Named recipients plus the audience expanded to agencies; never the sender,
        never auditors. Unknown named recipients stay in, so that the sender is told
        they were refused instead of them silently vanishing."""
        fed = self.federation
        out: set[str] = set(header.recipients)
        for name in header.audience:
            if name == "ALL":
                out.update(a.id for a in fed.agencies)
            elif fed.is_agency(name):
                out.add(name)
            elif fed.is_group(name):
                out.update(fed.members_of(name))
            else:
                out.update(fed.agencies_of_country(name))
        # Focal points' subscriptions pull in what matches their remit, but only for
        # broadcasts (an audience) and alerts: a bilateral exchange stays between the
        # parties the sender named, and TLP:RED is for named recipients only. The
        # receive policy still decides each one, so a match is never a permission.
        if (header.audience or header.kind == "alert") and header.restrictions.tlp != "RED":
            for fp in fed.agencies:
                if (fp.subscriptions and Role.FOCAL_POINT in fp.roles
                        and any(subscription_matches(sub, header) for sub in fp.subscriptions)):
                    out.add(fp.id)
        out.discard(header.sender)
        return sorted(
            a for a in out if (ag := fed.get_agency(a)) is None or not ag.is_auditor
        )

    # -- context ----------------------------------------------------------------

    def _parties(self, names: Iterable[str]) -> tuple[list[Any], list[Any], list[Any]]:
        fed = self.federation
        agencies: list[Any] = []
        countries: list[Any] = []
        groups: list[Any] = []
        for n in names:
            if fed.is_agency(n):
                agencies.append(_entity("Agency", n))
            elif fed.is_group(n):
                groups.append(_entity("Group", n))
            elif n in ISO_COUNTRIES:
                countries.append(_entity("Country", n))
            # Any other name is refused before Cedar runs (`_unresolved`): here it
            # would designate nobody and an exclusion would silently remove no one.
        return agencies, countries, groups

    def _context(
        self,
        header: Header,
        now: datetime,
        consents: Sequence[Consent] = (),
        purpose: str = "",
        evidential: bool = False,
        use_kind: str = "",
    ) -> dict[str, Any]:
        r = effective_restrictions(header.restrictions)
        ra, rc, rg = self._parties(r.release_to)
        ea, ec, eg = self._parties(r.exclude)
        ctx: dict[str, Any] = {
            "sender": _entity("Agency", header.sender),
            "level": Level(header.level).rank,
            "category": str(header.category),
            "kind": header.kind,
            "now": _micros(now),
            "restricted_release": bool(r.release_to),
            "release_agencies": ra,
            "release_countries": rc,
            "release_groups": rg,
            "exclude_agencies": ea,
            "exclude_countries": ec,
            "exclude_groups": eg,
            "purposes": [str(p) for p in r.purposes],
            "no_onward_dissemination": r.no_onward_dissemination,
            "no_evidential_use": r.no_evidential_use,
            "no_public_disclosure": r.no_public_disclosure,
            "not_to_suspects": r.not_to_suspects,
            "consult_before_action": r.consult_before_action,
            "consents": [
                {"action": c.action, "recipient": _entity("Agency", c.recipient)}
                for c in consents
            ],
            "purpose": purpose,
            "evidential": evidential,
            "use_kind": use_kind,
        }
        if r.not_before is not None:
            ctx["not_before"] = _micros(r.not_before)
        if r.expires_at is not None:
            ctx["expires_at"] = _micros(r.expires_at)
        return ctx

    def _time_slot(self, header: Header, now_us: int) -> int:
        """Decisions depend on `now` only through comparisons with these edges, so the
        index of `now` among them is a cache key that is exact, not approximate."""
        r = header.restrictions
        edges = list(self._loaded.thresholds)
        if r.not_before is not None:
            edges.append(_micros(r.not_before))
        if r.expires_at is not None:
            edges.append(_micros(r.expires_at))
        edges.sort()
        return bisect.bisect_right(edges, now_us)

    def _header_key(self, header: Header, now: datetime) -> tuple[Any, ...]:
        r = effective_restrictions(header.restrictions)
        return (
            self._loaded.version,
            header.sender,
            header.category,
            header.kind,
            header.level,
            tuple(r.release_to),
            tuple(r.exclude),
            tuple(r.purposes),
            r.no_onward_dissemination,
            r.no_evidential_use,
            r.no_public_disclosure,
            r.not_to_suspects,
            r.consult_before_action,
            r.not_before,
            r.expires_at,
            self._time_slot(header, _micros(now)),
        )

    # -- deciding ---------------------------------------------------------------

    def _run(
        self,
        action: str,
        principals: Sequence[str],
        ctx: dict[str, Any],
        resource: dict[str, str],
    ) -> list[tuple[bool, list[str], list[str]]]:
        """One batched Cedar call → (allowed, determining @ids, evaluation errors)."""
        # The context is serialized once for the whole batch, and requests are not
        # re-validated against the schema: policies and entities were validated at
        # load, the context is built here, and the reference-model property test
        # checks its shape. Together this roughly halves the cost of a fan-out.
        ctx_json = json.dumps(ctx)
        act = {"type": f"{NS}::Action", "id": action}
        requests = [
            {"principal": _uid("Agency", p), "action": act, "resource": resource,
             "context": ctx_json}
            for p in principals
        ]
        L = self._loaded
        results = cedarpy.is_authorized_batch(requests, L.policies, L.entities)
        out: list[tuple[bool, list[str], list[str]]] = []
        for res in results:
            d = res.diagnostics
            ann = d.id_annotations_by_reason
            ids = sorted(ann.get(pid, pid) for pid in d.reasons)
            out.append((bool(res.allowed), ids, list(d.errors)))
        return out

    def _explain(
        self,
        action: str,
        header: Header,
        principal: str,
        allowed: bool,
        ids: list[str],
        errors: list[str],
        *,
        purpose: str = "",
    ) -> Decision:
        v = self.version
        if errors:
            # Cedar skips a policy that errors; a skipped forbid must not turn into
            # a delivery, so any evaluation error refuses.
            return Decision(principal, False, RULE_ENGINE_ERROR,
                            f"refused: the policy engine could not evaluate the request "
                            f"({errors[0]})", v, tuple(ids))
        if allowed:
            # The originator's own use needs no agreement, so say so first.
            order = {"use.originator": -1, **self._loaded.basis_order}
            rule = min(ids, key=lambda i: (order.get(i, len(order)), i))
            if rule.startswith("basis."):
                reason = f"permitted under {rule.removeprefix('basis.')}"
            elif rule == "use.originator":
                reason = f"permitted: {principal} is the originator of the information"
            else:
                reason = f"permitted by policy {rule}"
            return Decision(principal, True, rule, reason, v, tuple(ids))
        if not ids:
            if action in _CONTENT_ACTIONS:
                return Decision(principal, False, RULE_NO_BASIS, self._no_basis_reason(
                    header, principal), v, ())
            return Decision(principal, False, RULE_DENY,
                            f"refused: no policy permits {principal} to {action}", v, ())
        prec = {r: i for i, r in enumerate(FORBID_PRECEDENCE)}
        rule = min(ids, key=lambda i: (prec.get(i, len(prec)), i))
        return Decision(principal, False, rule,
                        self._forbid_reason(rule, action, header, principal, purpose),
                        v, tuple(ids))

    def _no_basis_reason(self, header: Header, principal: str) -> str:
        return (f"refused: no legal basis covers {header.sender} and {principal} "
                f"for category {header.category!s}")

    def _forbid_reason(
        self, rule: str, action: str, header: Header, principal: str, purpose: str
    ) -> str:
        fed, r = self.federation, effective_restrictions(header.restrictions)
        agency = fed.get_agency(principal)
        if rule == "restriction.self":
            return f"refused: {principal} is the sender of the message"
        if rule == "role.auditor":
            return f"refused: {principal} is an auditor and sees metadata, never content"
        if rule == "restriction.exclude":
            hits = [n for n in r.exclude if fed.name_matches(n, principal)]
            return (f"refused: {principal} is excluded by the sender "
                    f"(exclude = {', '.join(hits or r.exclude)})")
        if rule == "restriction.release_to":
            return (f"refused: {principal} is not among those the sender released to "
                    f"(release_to = {', '.join(r.release_to)})")
        if rule == "restriction.clearance":
            cl = agency.clearance.value if agency else "unknown"
            return (f"refused: clearance {cl} of {principal} is below "
                    f"{header.level!s}")
        if rule == "restriction.not_before" and r.not_before is not None:
            return f"refused: the sender forbids use before {_fmt_time(r.not_before)}"
        if rule == "restriction.expires_at" and r.expires_at is not None:
            return f"refused: the information expired at {_fmt_time(r.expires_at)}"
        if rule == "restriction.no_onward_dissemination":
            return (f"refused: {header.sender} forbids onward dissemination"
                    f"{_tlp_note(header.restrictions, 'no_onward_dissemination')} and has "
                    f"not consented to forwarding to {principal}")
        if rule == "restriction.no_evidential_use":
            return (f"refused: {header.sender} forbids evidential use and has not consented "
                    f"to it by {principal}")
        if rule == "restriction.purpose":
            allowed = ", ".join(str(p) for p in r.purposes)
            return (f"refused: purpose {purpose or '(none)'} is not among the purposes "
                    f"the sender permits ({allowed})")
        if rule == "restriction.no_public_disclosure":
            return (f"refused: {header.sender} forbids public disclosure"
                    f"{_tlp_note(header.restrictions, 'no_public_disclosure')} and has not "
                    f"consented to it by {principal}")
        if rule == "restriction.not_to_suspects":
            return (f"refused: {header.sender} forbids showing the information to suspects"
                    f"{_tlp_note(header.restrictions, 'not_to_suspects')} and has not "
                    f"consented to it by {principal}")
        if rule == "restriction.consult_before_action":
            return (f"refused: {header.sender} asks to be consulted before executive action "
                    f"and has not consented to it by {principal}")
        return f"refused by policy {rule}"

    def _registry_refusal(self, header: Header, principal: str,
                          unresolved: str | None = None) -> Decision | None:
        """Refusals decided before Cedar: unknown parties, and restrictions naming what
        the registry does not know (`unresolved`, from `_unresolved`; computed once per
        header by the caller). Fail closed: such a restriction refuses everyone rather
        than designating no one."""
        fed = self.federation
        if not fed.is_agency(header.sender):
            return Decision(principal, False, RULE_UNKNOWN_SENDER,
                            f"refused: sender {header.sender} is not a registered agency",
                            self.version, (RULE_UNKNOWN_SENDER,))
        if not fed.is_agency(principal):
            return Decision(principal, False, RULE_UNKNOWN_AGENCY,
                            f"refused: {principal} is not a registered agency",
                            self.version, (RULE_UNKNOWN_AGENCY,))
        if unresolved is not None:
            return Decision(principal, False, RULE_UNRESOLVED, unresolved, self.version,
                            (RULE_UNRESOLVED,))
        return None

    def _unresolved(self, r: Restrictions) -> str | None:
        errors = restriction_errors(self.vocabulary, r)
        if not errors:
            return None
        return ("refused: the sender's restrictions name what the federation does not "
                f"know ({'; '.join(f'{e.path}: {e.message}' for e in errors)})")

    def _class_key(self, agency: str, visible: set[tuple[str, str]]) -> Any:
        """Equal keys ⇒ equal Cedar decisions for one context. An agency the context
        names is its own class; otherwise only its attributes and the ancestors that
        some policy or the context can observe (Agreements and Groups are named by
        basis and restriction rules; a Country only when named) distinguish it."""
        if ("Agency", agency) in visible:
            return ("agency", agency)
        entry = self._loaded.classes.get(agency)
        if entry is None:
            return ("agency", agency)
        attrs, ancestors = entry
        observable = frozenset(
            a for a in ancestors if a[0] in ("Agreement", "Group") or a in visible
        )
        return (attrs, observable)

    def decide_receive(
        self, header: Header, recipients: Sequence[str], now: datetime
    ) -> list[Decision]:
        """One decision per recipient, in order; one Cedar call for all that miss
        the cache."""
        key = self._header_key(header, now)
        out: list[Decision | None] = [None] * len(recipients)
        todo: list[int] = []
        unresolved = self._unresolved(header.restrictions)
        for i, rcp in enumerate(recipients):
            refusal = self._registry_refusal(header, rcp, unresolved)
            if refusal is not None:
                out[i] = refusal
                continue
            hit = self._cache.get((*key, rcp))
            if hit is not None:
                out[i] = hit
            else:
                todo.append(i)
        if todo:
            ctx = self._context(header, now)
            visible = _named_entities(ctx) | self._loaded.named_in_policies
            # One Cedar request per class of indistinguishable recipients.
            rep_of: dict[Any, int] = {}
            member_class: list[Any] = []
            for i in todo:
                cls = self._class_key(recipients[i], visible)
                rep_of.setdefault(cls, len(rep_of))
                member_class.append(rep_of[cls])
            reps = [""] * len(rep_of)
            for i, c in zip(todo, member_class, strict=True):
                reps[c] = reps[c] or recipients[i]
            class_results = self._run("receive", reps, ctx, _uid("Message", header.id))
            results = [class_results[c] for c in member_class]
            caching = self._cache_size > 0
            if len(self._cache) + len(todo) > self._cache_size:
                # Dropping everything is cheaper than LRU bookkeeping per hit, and the
                # next fan-out of a hot header refills it in one batch.
                self._cache = {}
            for i, (allowed, ids, errors) in zip(todo, results, strict=True):
                d = self._explain("receive", header, recipients[i], allowed, ids, errors)
                out[i] = d
                if caching and not errors:
                    self._cache[(*key, recipients[i])] = d
        return [d for d in out if d is not None]

    def decide_forward(
        self,
        header: Header,
        holder: str,
        third_party: str,
        consents: Sequence[Consent],
        now: datetime,
    ) -> Decision:
        """May `holder` pass the information to `third_party`? The receive rules apply
        to the third party as if the originator had sent it, plus H2."""
        fed = self.federation
        if not fed.is_agency(holder):
            return Decision(third_party, False, RULE_UNKNOWN_AGENCY,
                            f"refused: holder {holder} is not a registered agency",
                            self.version, (RULE_UNKNOWN_AGENCY,))
        refusal = self._registry_refusal(header, third_party,
                                         self._unresolved(header.restrictions))
        if refusal is not None:
            return refusal
        ctx = self._context(header, now, consents)
        ((allowed, ids, errors),) = self._run(
            "forward", [third_party], ctx, _uid("Message", header.id))
        return self._explain("forward", header, third_party, allowed, ids, errors)

    def decide_use(
        self,
        header: Header,
        holder: str,
        purpose: str,
        evidential: bool,
        consents: Sequence[Consent],
        now: datetime,
        use_kind: str = "",
    ) -> Decision:
        """May `holder` use the information for `purpose`, as a use of `use_kind`
        (schemas.codes.UseKind; "" when the caller declares no kind)?"""
        refusal = self._registry_refusal(header, holder, self._unresolved(header.restrictions))
        if refusal is not None:
            return refusal
        ctx = self._context(header, now, consents, purpose=purpose, evidential=evidential,
                            use_kind=use_kind)
        ((allowed, ids, errors),) = self._run(
            "use", [holder], ctx, _uid("Message", header.id))
        return self._explain("use", header, holder, allowed, ids, errors, purpose=purpose)

    def decide_read_metadata(self, agency: str, message_id: str) -> Decision:
        if not self.federation.is_agency(agency):
            return Decision(agency, False, RULE_UNKNOWN_AGENCY,
                            f"refused: {agency} is not a registered agency",
                            self.version, (RULE_UNKNOWN_AGENCY,))
        ((allowed, ids, errors),) = self._run(
            "read_metadata", [agency], {}, _uid("Message", message_id))
        return self._simple(agency, "read the audit metadata", allowed, ids, errors)

    def decide_subscribe(self, agency: str, feed: str = "alerts") -> Decision:
        if not self.federation.is_agency(agency):
            return Decision(agency, False, RULE_UNKNOWN_AGENCY,
                            f"refused: {agency} is not a registered agency",
                            self.version, (RULE_UNKNOWN_AGENCY,))
        ((allowed, ids, errors),) = self._run("subscribe", [agency], {}, _uid("Feed", feed))
        return self._simple(agency, f"subscribe to {feed}", allowed, ids, errors)

    def _simple(
        self, agency: str, what: str, allowed: bool, ids: list[str], errors: list[str]
    ) -> Decision:
        v = self.version
        if errors:
            return Decision(agency, False, RULE_ENGINE_ERROR,
                            f"refused: the policy engine could not evaluate the request "
                            f"({errors[0]})", v, tuple(ids))
        if allowed:
            return Decision(agency, True, ids[0], f"permitted: {agency} may {what}", v,
                            tuple(ids))
        if ids:
            prec = {r: i for i, r in enumerate(FORBID_PRECEDENCE)}
            rule = min(ids, key=lambda i: (prec.get(i, len(prec)), i))
            return Decision(agency, False, rule,
                            f"refused: {agency} may not {what} (policy {rule})", v, tuple(ids))
        return Decision(agency, False, RULE_DENY,
                        f"refused: no policy permits {agency} to {what}", v, ())
