"""The request context: what Cedar sees of a message (its signed header, with the TLP
label applied to the restrictions), of the moment and of the consents relied on; and
the cache key that is exact for it."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from policies.decisions import Consent
from policies.entities import entity_ref
from schemas.codes import Level
from schemas.header import Header
from schemas.restrictions import Restrictions, effective_restrictions

# A name of a release_to / exclude list → ("Agency" | "Country" | "Group"), or None for
# a name that designates no one (refused before Cedar runs, see PolicyEngine).
Classify = Callable[[str], str | None]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(t: datetime) -> int:
    """Cedar times: microseconds since the Unix epoch, exact for Python datetimes."""
    if t.tzinfo is None:
        raise ValueError("naive datetime: orcon times are timezone-aware UTC")
    delta = t - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _parties(names: Iterable[str], classify: Classify) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"Agency": [], "Country": [], "Group": []}
    for n in names:
        kind = classify(n)
        if kind is not None:
            out[kind].append(entity_ref(kind, n))
    return out


def _nobody(name: str) -> None:
    return None


def restriction_context(
    r: Restrictions,
    sender: str,
    now: datetime,
    classify: Classify | None,
    consents: Sequence[Consent] = (),
    purpose: str = "",
    evidential: bool = False,
    use_kind: str = "",
) -> dict[str, Any]:
    """The part of the context the sender's restrictions (`r`, raw: the TLP label is
    applied here) and the act decide. `classify` places release_to / exclude names in
    the registry; None when the caller has no registry: the context then names no
    parties and leaves release_to and exclude to a caller that has one."""
    r = effective_restrictions(r)
    release_to: Sequence[str] = r.release_to
    exclude_names: Sequence[str] = r.exclude
    if classify is None:
        release_to, exclude_names, classify = (), (), _nobody
    release, exclude = _parties(release_to, classify), _parties(exclude_names, classify)
    ctx: dict[str, Any] = {
        "sender": entity_ref("Agency", sender),
        "now": micros(now),
        "restricted_release": bool(release_to),
        "release_agencies": release["Agency"],
        "release_countries": release["Country"],
        "release_groups": release["Group"],
        "exclude_agencies": exclude["Agency"],
        "exclude_countries": exclude["Country"],
        "exclude_groups": exclude["Group"],
        "purposes": [str(p) for p in r.purposes],
        "tlp": "" if r.tlp is None else str(r.tlp),
        "no_onward_dissemination": r.no_onward_dissemination,
        "no_evidential_use": r.no_evidential_use,
        "no_public_disclosure": r.no_public_disclosure,
        "not_to_suspects": r.not_to_suspects,
        "consult_before_action": r.consult_before_action,
        "consents": [
            {"action": c.action, "recipient": entity_ref("Agency", c.recipient)}
            for c in consents
        ],
        "purpose": purpose,
        "evidential": evidential,
        "use_kind": use_kind,
    }
    if r.not_before is not None:
        ctx["not_before"] = micros(r.not_before)
    if r.expires_at is not None:
        ctx["expires_at"] = micros(r.expires_at)
    return ctx


def message_facts(header: Header) -> dict[str, Any]:
    """The rest of the context of a decision about a message: what the legal bases and
    the clearance rule compare."""
    return {"level": Level(header.level).rank, "category": str(header.category),
            "kind": header.kind}


# For a caller without the registry (policies.holdercheck): level 0 is below every
# clearance, and no basis is loaded to compare category and kind.
NO_MESSAGE_FACTS: dict[str, Any] = {"level": 0, "category": "", "kind": ""}


def _time_slot(header: Header, now_us: int, thresholds: Sequence[int]) -> int:
    """Decisions depend on `now` only through comparisons with these edges, so the
    index of `now` among them is a cache key that is exact, not approximate."""
    r = header.restrictions
    edges = list(thresholds)
    if r.not_before is not None:
        edges.append(micros(r.not_before))
    if r.expires_at is not None:
        edges.append(micros(r.expires_at))
    edges.sort()
    return bisect.bisect_right(edges, now_us)


def header_key(header: Header, now: datetime, version: str,
               thresholds: Sequence[int]) -> tuple[Any, ...]:
    """Everything of a header and a moment that a receive decision depends on, except
    the recipient."""
    r = effective_restrictions(header.restrictions)
    return (
        version,
        header.sender,
        header.category,
        header.kind,
        header.level,
        tuple(r.release_to),
        tuple(r.exclude),
        tuple(r.purposes),
        r.tlp,
        r.no_onward_dissemination,
        r.no_evidential_use,
        r.no_public_disclosure,
        r.not_to_suspects,
        r.consult_before_action,
        r.not_before,
        r.expires_at,
        _time_slot(header, micros(now), thresholds),
    )
