"""A holder's own check of a use before it declares it: the originator's restrictions
decided by the same Cedar rules the broker applies (policies/cedar/restrictions.cedar;
the broker passes its engine's `policy_dir`) and worded alike (policies/reasons.py),
without the registry. What needs the registry
(release_to, exclude, clearance, a legal basis) is left to the broker, which decides
every declared use again with all the rules."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cedarpy

from policies import reasons
from policies.context import NO_MESSAGE_FACTS, restriction_context
from policies.decisions import Consent, Decision
from policies.entities import uid
from policies.evaluate import ask
from policies.loading import DEFAULT_POLICY_DIR
from schemas.codes import ConsentScope
from schemas.restrictions import Restrictions

RESTRICTIONS_FILE = "restrictions.cedar"

# The restriction each consent lifts, and the consent's `action` as the Cedar rules
# match it in the request context.
CONSENT_LIFTS: dict[str, tuple[ConsentScope, str]] = {
    "restriction.no_evidential_use": (ConsentScope.EVIDENTIAL_USE, "use"),
    "restriction.consult_before_action": (ConsentScope.EXECUTIVE_ACTION, "executive_action"),
    "restriction.no_public_disclosure": (ConsentScope.PUBLIC_DISCLOSURE, "public_disclosure"),
    "restriction.not_to_suspects": (ConsentScope.SHOW_TO_SUSPECT, "show_to_suspect"),
    # Naming the holder itself, a consent to forward lifts the restriction on its export.
    "restriction.no_onward_dissemination": (ConsentScope.ONWARD_DISSEMINATION, "forward"),
}
CEDAR_CONSENT: dict[ConsentScope, str] = dict(CONSENT_LIFTS.values())

# Which consent a use needs does not depend on the moment (no consent lifts a time
# restriction), so it is asked at one fixed instant.
_ANY_TIME = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Rules:
    version: str
    policies: Any


def _rules(policy_dir: Path) -> _Rules:
    """The restrictions file of `policy_dir` as it is now: parsed once per version of
    the file (its identity, size and modification time), so a file replaced or edited
    for an engine's reload is read again, never served from a stale parse."""
    path = _file(policy_dir)
    st = os.stat(path)
    return _parsed(path, st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _file(policy_dir: Path) -> str:
    return str(policy_dir / RESTRICTIONS_FILE)


@functools.lru_cache(maxsize=16)
def _parsed(path: str, ino: int, size: int, mtime_ns: int) -> _Rules:
    text = Path(path).read_text()
    return _Rules(hashlib.sha256(text.encode()).hexdigest()[:16],
                  cedarpy.PolicySet.from_str(text))


def _agency(ident: str) -> dict[str, Any]:
    # The registry's attributes are unknown here: a clearance of 0 against a level of
    # 0 (NO_MESSAGE_FACTS) leaves the clearance rule to the broker.
    return {"uid": uid("Agency", ident), "parents": [],
            "attrs": {"clearance": 0, "auditor": False, "focal_point": False}}


def use_refusal(r: Restrictions, originator: str, holder: str, now: datetime, *,
                purpose: str, evidential: bool, use_kind: str,
                consents: Sequence[ConsentScope] = (),
                policy_dir: Path = DEFAULT_POLICY_DIR) -> Decision | None:
    """The refusal of `holder`'s use under restrictions `r` (raw: the TLP label is
    applied) of information from `originator`, with the originator's consents of scopes
    `consents` (verified by the caller); None if the restrictions allow it."""
    rules = _rules(policy_dir)
    ctx = restriction_context(
        r, originator, now, None,
        [Consent(CEDAR_CONSENT[s], holder) for s in consents if s in CEDAR_CONSENT],
        purpose, evidential, use_kind) | NO_MESSAGE_FACTS
    entities = [_agency(holder)] + ([_agency(originator)] if originator != holder else [])
    ((_, ids, errors),) = ask(rules.policies, entities, "use", [holder], ctx,
                              uid("Message", "-"))
    if errors:
        return reasons.engine_error(holder, errors, ids, rules.version)
    if not ids:
        return None
    rule = reasons.first_forbid(ids, "use")
    return Decision(holder, False, rule, reasons.forbid_reason(
        rule, action="use", sender=originator, principal=holder, raw=r, level="",
        purpose=purpose, fed=None), rules.version, tuple(ids))


def consent_needed(r: Restrictions, *, evidential: bool, use_kind: str,
                   policy_dir: Path = DEFAULT_POLICY_DIR) -> ConsentScope | None:
    """The consent a use of `use_kind` needs under `r` (None: none). When two would be
    needed, the one whose restriction is reported first."""
    d = use_refusal(r, "originator", "holder", _ANY_TIME, purpose="", evidential=evidential,
                    use_kind=use_kind, policy_dir=policy_dir)
    if d is None:
        return None
    liftable = [rule for rule in d.rules if rule in CONSENT_LIFTS]
    return CONSENT_LIFTS[reasons.first_forbid(liftable, "use")][0] if liftable else None
