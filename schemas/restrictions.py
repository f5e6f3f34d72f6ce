"""The Article 10(2) restriction vocabulary, carried in the signed header."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from schemas.codes import TLP, Purpose

# A registry name: ISO 3166-1 alpha-2 country, agency id or group id.
PartyName = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9][A-Z0-9-]{1,39}$")]
LangTag = Annotated[str, msgspec.Meta(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]


class Condition(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A free-text handling condition (Europol H3), with its language."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    lang: LangTag


class Restrictions(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """What the originator permits. Enforced by the broker (routing, forwarding) and by
    the recipient SDK (use, retention). An empty list means "not restricted" for
    `purposes` and `release_to`, and "nobody" for `exclude`."""

    purposes: list[Purpose] = []
    no_evidential_use: bool = False  # H1: not as evidence without consent
    no_onward_dissemination: bool = False  # H2: no third party without consent
    release_to: list[PartyName] = []
    exclude: list[PartyName] = []
    not_before: datetime | None = None
    expires_at: datetime | None = None
    destroy_after_days: Annotated[int, msgspec.Meta(ge=1, le=36500)] | None = None
    no_public_disclosure: bool = False
    not_to_suspects: bool = False
    consult_before_action: bool = False
    conditions: list[Condition] = []
    tlp: TLP | None = None
