"""What the policies answer (`Decision`) and the originator consents they take into
account (`Consent`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec


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
    that third party (or, naming the holder itself, for its export), `use` lifts
    no_evidential_use for that holder, and `public_disclosure`, `show_to_suspect`,
    `executive_action` lift no_public_disclosure, not_to_suspects and
    consult_before_action for that holder's use of that kind."""

    action: str
    recipient: str
