"""The Article 10(2) restriction vocabulary, carried in the signed header.

TLP 2.0 labels are presets. `effective_restrictions(r)` returns the restrictions with
the label's fields switched on; it only ever tightens, never loosens, because the
sender's explicit restrictions always win (design principle 2). It is THE one place a
label turns into restrictions: every decision (receive, forward, use, export; the Cedar
context, the reference model, the broker's act checks, the recipient SDK) reads the
restrictions through it, never `header.restrictions` raw, so a label can never be
honoured by one decision and ignored by another. `apply_tlp` and `r.expanded()` are
the same function under older names.

- RED (named recipients only, no further disclosure): no_onward_dissemination,
  no_public_disclosure, not_to_suspects; and header.recipients must name them (a
  semantic rule in `schemas.header_rules`), so the broker never expands an audience.
- AMBER+STRICT (the recipient's own organization only): no_onward_dissemination,
  no_public_disclosure, not_to_suspects.
- AMBER (need-to-know within the recipients' organizations and their clients):
  no_onward_dissemination, no_public_disclosure.
- GREEN (the community, i.e. the federation; not public): no_public_disclosure.
- CLEAR (no restriction): nothing.

AMBER and AMBER+STRICT set the same orcon fields: neither permits passing the
information to another agency, which is all the broker can see. What differs happens
inside the recipient's organization (clients on a need-to-know basis under AMBER); the
recipient SDK reads `tlp` itself for that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec

from schemas.codes import TLP, Purpose
from schemas.entities import Timestamp
from schemas.ids import PARTY_NAME_PATTERN

# A registry name: ISO 3166-1 alpha-2 country, agency id or group id. The pattern is all
# a schema can check; the broker resolves every name against the registry and refuses a
# message naming one that resolves to nothing (policies/names.py), so the description
# says so to whoever reads the JSON Schema.
PartyName = Annotated[str, msgspec.Meta(
    pattern=PARTY_NAME_PATTERN,
    description="An ISO 3166-1 alpha-2 country code, or an agency or group id of the "
    "federation registry. In a header's restrictions, audience and recipients, a name that "
    "resolves to none of these refuses the message (fail closed: rule "
    "restriction.unresolved, audience.unresolved or recipient.unresolved).")]
LangTag = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z")]


class Condition(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True):
    """A free-text handling condition (Europol H3), with its language."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    lang: LangTag


class Restrictions(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True,
                   omit_defaults=True):
    """What the originator permits. Enforced by the broker (routing, forwarding) and by
    the recipient SDK (use, retention). An empty list means "not restricted" for
    `purposes` and `release_to`, and "nobody" for `exclude`."""

    purposes: list[Purpose] = []
    no_evidential_use: bool = False  # H1: not as evidence without consent
    no_onward_dissemination: bool = False  # H2: no third party without consent
    release_to: list[PartyName] = []
    exclude: list[PartyName] = []
    not_before: Timestamp | None = None  # zone-aware, like every time on the wire
    expires_at: Timestamp | None = None
    destroy_after_days: Annotated[int, msgspec.Meta(ge=1, le=36500)] | None = None
    no_public_disclosure: bool = False
    not_to_suspects: bool = False
    consult_before_action: bool = False
    conditions: list[Condition] = []
    tlp: TLP | None = None

    def expanded(self) -> Restrictions:
        """These restrictions with the TLP preset applied (see the module docstring)."""
        return effective_restrictions(self)


@dataclass(frozen=True, slots=True)
class _Preset:
    no_onward_dissemination: bool = False
    no_public_disclosure: bool = False
    not_to_suspects: bool = False
    consult_before_action: bool = False  # no TLP label asks it; kept for completeness


TLP_PRESETS: dict[TLP, _Preset] = {
    TLP.RED: _Preset(True, True, True),
    TLP.AMBER_STRICT: _Preset(True, True, True),
    TLP.AMBER: _Preset(True, True),
    TLP.GREEN: _Preset(no_public_disclosure=True),
    TLP.CLEAR: _Preset(),
}


def effective_restrictions(r: Restrictions) -> Restrictions:
    """What `r` forbids once its TLP label is applied: the label's fields OR-ed with
    what the sender set (never loosened). Idempotent."""
    if r.tlp is None:
        return r
    p = TLP_PRESETS[TLP(r.tlp)]
    return msgspec.structs.replace(
        r,
        no_onward_dissemination=r.no_onward_dissemination or p.no_onward_dissemination,
        no_public_disclosure=r.no_public_disclosure or p.no_public_disclosure,
        not_to_suspects=r.not_to_suspects or p.not_to_suspects,
        consult_before_action=r.consult_before_action or p.consult_before_action,
    )


apply_tlp = effective_restrictions
