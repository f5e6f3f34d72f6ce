"""Fail closed on names: every party a message names must resolve in the federation.

A restriction that names nothing known is worse than no restriction: `exclude =
["MYANMAR"]` reads like an exclusion and excludes nobody. So every name in
`release_to`, `exclude`, `audience` and `recipients` must be, exactly:

- an ISO 3166-1 alpha-2 code (upper case) for a country,
- an agency id of the registry,
- a group id of the registry,
- or, in `audience` only, `ALL`;

otherwise the message is refused before it is sealed (the broker's resolve step, the
SDK) and again when it is submitted (the broker, for an SDK that skips the check), with
a `FieldError` naming the field, the value and the nearest valid values. Nothing is
guessed: a suggestion is only ever shown, never applied, because applying it would
silently widen or narrow what the sender wrote.

The functions take plain sequences so they run both on a decoded `Header` and on the
raw msgpack of a draft that does not decode (a lower-case code fails the schema's
pattern before any registry check could name the code it resembles).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from policies.countries import ISO_COUNTRIES
from policies.country_names import COUNTRY_NAMES
from policies.federation import Federation
from schemas.codes import TLP, Purpose
from schemas.errors import FieldError
from schemas.header import Header
from schemas.restrictions import Restrictions

RULE_RESTRICTION = "restriction.unresolved"
RULE_AUDIENCE = "audience.unresolved"
RULE_RECIPIENT = "recipient.unresolved"
AUDIENCE_ALL = "ALL"

_MAX_SUGGESTIONS = 3
_FOLD = re.compile(r"[^0-9a-z]+")


def _fold(text: str) -> str:
    return _FOLD.sub("", text.casefold())


# Country names and alpha-3 codes, folded, to the alpha-2 code a person most likely meant.
_COUNTRY_HINTS: dict[str, str] = {}
for _code, (_alpha3, *_names) in COUNTRY_NAMES.items():
    _COUNTRY_HINTS[_fold(_alpha3)] = _code
    for _n in _names:
        _COUNTRY_HINTS[_fold(_n)] = _code


def _country_label(code: str) -> str:
    names = COUNTRY_NAMES.get(code)
    return f"{code} ({names[-1]})" if names else code


class Vocabulary:
    """What names resolve to in one federation, and what to suggest for the others."""

    def __init__(self, fed: Federation) -> None:
        self.agencies = frozenset(a.id for a in fed.agencies)
        self.groups = frozenset(g.id for g in fed.groups)
        # Countries the federation itself knows come first among suggestions.
        local = {a.country for a in fed.agencies}
        for g in fed.groups:
            local.update(m for m in g.members if m in ISO_COUNTRIES)
        self.local_countries = frozenset(local)

    def is_party(self, name: str) -> bool:
        return name in self.agencies or name in self.groups or name in ISO_COUNTRIES

    def nearest(self, value: str, *, agencies_only: bool = False,
                allow_all: bool = False) -> list[str]:
        """Up to three valid names close to `value`, most likely first."""
        out: list[str] = []

        def add(name: str) -> None:
            if name not in out:
                out.append(name)

        pool = sorted(self.agencies) if agencies_only else sorted(
            self.agencies | self.groups | self.local_countries
            | ({AUDIENCE_ALL} if allow_all else set()))
        upper = value.strip().upper()
        if upper != value and (upper in pool or (not agencies_only and upper in ISO_COUNTRIES)):
            add(_country_label(upper) if upper in ISO_COUNTRIES else upper)
        if not agencies_only:
            hinted = _COUNTRY_HINTS.get(_fold(value))
            if hinted is not None:
                add(_country_label(hinted))
        for m in difflib.get_close_matches(upper, pool, n=_MAX_SUGGESTIONS, cutoff=0.5):
            add(_country_label(m) if m in ISO_COUNTRIES else m)
        return out[:_MAX_SUGGESTIONS]


_PURPOSES = sorted(p.value for p in Purpose)
_TLPS = [t.value for t in TLP]


def _close(value: str, choices: list[str]) -> list[str]:
    folded = {_fold(c): c for c in choices}
    exact = folded.get(_fold(value))
    if exact is not None:
        return [exact]
    return difflib.get_close_matches(value.lower() if choices is _PURPOSES else value.upper(),
                                     choices, n=_MAX_SUGGESTIONS, cutoff=0.5)


def _message(value: object, what: str, suggestions: list[str]) -> str:
    hint = f"; did you mean {' or '.join(suggestions)}?" if suggestions else ""
    return f"'{value}' names {what}{hint}"


def unresolved(
    vocab: Vocabulary,
    *,
    release_to: Iterable[object] = (),
    exclude: Iterable[object] = (),
    audience: Iterable[object] = (),
    recipients: Iterable[object] = (),
    purposes: Iterable[object] = (),
    tlp: object = None,
    root: str = "header",
) -> list[FieldError]:
    """Every name or code that does not resolve, as a FieldError with its path."""
    errors: list[FieldError] = []
    for i, v in enumerate(purposes):
        if v not in _PURPOSES:
            errors.append(FieldError(
                f"{root}.restrictions.purposes[{i}]", RULE_RESTRICTION,
                _message(v, "no purpose orcon knows", _close(str(v), _PURPOSES))))
    if tlp is not None and tlp not in _TLPS:
        errors.append(FieldError(
            f"{root}.restrictions.tlp", RULE_RESTRICTION,
            _message(tlp, "no TLP 2.0 label", _close(str(tlp), _TLPS))))
    party = "no country (ISO 3166-1 alpha-2 code), agency or group of the federation"
    for field, values in (("release_to", release_to), ("exclude", exclude)):
        for i, v in enumerate(values):
            if not (isinstance(v, str) and vocab.is_party(v)):
                errors.append(FieldError(
                    f"{root}.restrictions.{field}[{i}]", RULE_RESTRICTION,
                    _message(v, party, vocab.nearest(str(v)))))
    for i, v in enumerate(audience):
        if not (isinstance(v, str) and (v == AUDIENCE_ALL or vocab.is_party(v))):
            errors.append(FieldError(
                f"{root}.audience[{i}]", RULE_AUDIENCE,
                _message(v, f"{party}, nor ALL", vocab.nearest(str(v), allow_all=True))))
    for i, v in enumerate(recipients):
        if not (isinstance(v, str) and v in vocab.agencies):
            errors.append(FieldError(
                f"{root}.recipients[{i}]", RULE_RECIPIENT,
                _message(v, "no agency of the federation",
                         vocab.nearest(str(v), agencies_only=True))))
    return errors


def restriction_errors(vocab: Vocabulary, r: Restrictions,
                       root: str = "header") -> list[FieldError]:
    """The unresolvable names in `release_to` / `exclude` (what decisions depend on)."""
    if not r.release_to and not r.exclude:
        return []
    return unresolved(vocab, release_to=r.release_to, exclude=r.exclude, root=root)


def header_errors(vocab: Vocabulary, header: Header, *,
                  recipients: bool = True) -> list[FieldError]:
    """Every unresolvable name of a decoded header. `recipients=False` leaves signed
    recipients to the policy engine, which refuses an unknown one by name."""
    return unresolved(vocab, release_to=header.restrictions.release_to,
                      exclude=header.restrictions.exclude, audience=header.audience,
                      recipients=header.recipients if recipients else ())


def _list(value: Any) -> Sequence[object]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def raw_header_errors(vocab: Vocabulary, raw: object) -> list[FieldError]:
    """The same check on an undecoded draft (a msgpack map), so that a value the schema
    refuses by pattern (`mm`) is still explained with the name it resembles."""
    if not isinstance(raw, Mapping):
        return []
    r = raw.get("restrictions")
    r = r if isinstance(r, Mapping) else {}
    return unresolved(vocab, release_to=_list(r.get("release_to")),
                      exclude=_list(r.get("exclude")), audience=_list(raw.get("audience")),
                      recipients=_list(raw.get("recipients")),
                      purposes=_list(r.get("purposes")), tlp=r.get("tlp"))
