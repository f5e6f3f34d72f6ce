"""An independent plain-Python model of orcon's policy rules (no Cedar).

Property tests check that Cedar's decisions equal this model's, so a mistake in a
`.cedar` file, the basis template, the entity hierarchy or the request context
shows up as a disagreement. Keep it naive: it is a specification, not a fast path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from policies.countries import ISO_COUNTRIES
from policies.federation import Federation, Role
from schemas.codes import Level
from schemas.header import Header
from schemas.restrictions import effective_restrictions

CONTENT_ACTIONS = frozenset({"receive", "forward", "use"})


@dataclass(frozen=True)
class RefDecision:
    allowed: bool
    # Forbids that apply when refused by a restriction; satisfied permits when
    # allowed; empty when nothing applies (default deny); or the registry rule.
    rules: frozenset[str]


def _matches(fed: Federation, name: str, agency_id: str) -> bool:
    a = fed.get_agency(agency_id)
    assert a is not None
    if name == a.id or name == a.country:
        return True
    return fed.is_group(name) and agency_id in fed.members_of(name)


def _party(fed: Federation, parties: Sequence[str], default_all: bool, agency_id: str) -> bool:
    if default_all and not parties:
        return True
    return any(_matches(fed, p, agency_id) for p in parties)


def _known(fed: Federation, name: str) -> bool:
    return fed.is_agency(name) or fed.is_group(name) or name in ISO_COUNTRIES


def decide(
    fed: Federation,
    action: str,
    header: Header,
    principal: str,
    now: datetime,
    consents: Sequence[tuple[str, str]] = (),
    purpose: str = "",
    evidential: bool = False,
    use_kind: str = "",
) -> RefDecision:
    if not fed.is_agency(header.sender):
        return RefDecision(False, frozenset({"registry.unknown-sender"}))
    if not fed.is_agency(principal):
        return RefDecision(False, frozenset({"registry.unknown-agency"}))
    # The TLP label counts as the restrictions it implies, for every action.
    r = effective_restrictions(header.restrictions)
    if action in CONTENT_ACTIONS and not all(
            _known(fed, n) for n in (*r.release_to, *r.exclude)):
        return RefDecision(False, frozenset({"restriction.unresolved"}))
    agency = fed.agency(principal)
    is_sender = principal == header.sender
    forbids: set[str] = set()
    permits: set[str] = set()

    if action in CONTENT_ACTIONS:
        if action in ("receive", "forward") and is_sender:
            forbids.add("restriction.self")
        if Role.AUDITOR in agency.roles:
            forbids.add("role.auditor")
        if not is_sender:
            if any(_matches(fed, n, principal) for n in r.exclude):
                forbids.add("restriction.exclude")
            if r.release_to and not any(_matches(fed, n, principal) for n in r.release_to):
                forbids.add("restriction.release_to")
            if agency.clearance.rank < Level(header.level).rank:
                forbids.add("restriction.clearance")
            if r.not_before is not None and now < r.not_before:
                forbids.add("restriction.not_before")
            if r.expires_at is not None and now >= r.expires_at:
                forbids.add("restriction.expires_at")
        # An export is onward dissemination by the holder itself (out of orcon).
        exporting = action == "use" and use_kind == "export" and not is_sender
        if ((action == "forward" or exporting) and r.no_onward_dissemination
                and ("forward", principal) not in consents):
            forbids.add("restriction.no_onward_dissemination")
        if exporting and r.tlp == "RED":
            forbids.add("restriction.tlp")
        if action == "use" and not is_sender:
            if r.purposes and purpose not in {str(p) for p in r.purposes}:
                forbids.add("restriction.purpose")
            if evidential and r.no_evidential_use and ("use", principal) not in consents:
                forbids.add("restriction.no_evidential_use")
            for kind, flag, rule in (
                    ("public_disclosure", r.no_public_disclosure,
                     "restriction.no_public_disclosure"),
                    ("show_to_suspect", r.not_to_suspects, "restriction.not_to_suspects"),
                    ("executive_action", r.consult_before_action,
                     "restriction.consult_before_action")):
                if use_kind == kind and flag and (kind, principal) not in consents:
                    forbids.add(rule)
        if action == "use" and is_sender:
            permits.add("use.originator")
        msg_purposes = {str(p) for p in r.purposes}
        for ag in fed.agreements:
            if not (_party(fed, ag.parties, ag.default_basis, principal)
                    and _party(fed, ag.parties, ag.default_basis, header.sender)):
                continue
            if str(header.category) not in {str(c) for c in ag.categories}:
                continue
            if ag.kinds and header.kind not in ag.kinds:
                continue
            if ag.purposes and not (
                msg_purposes and msg_purposes <= {str(p) for p in ag.purposes}
            ):
                continue
            if not ag.in_force(now):
                continue
            permits.add(f"basis.{ag.id}")
    elif action == "read_metadata":
        if Role.AUDITOR in agency.roles:
            permits.add("audit.read_metadata")
    elif action == "subscribe":
        if Role.AUDITOR in agency.roles:
            forbids.add("role.auditor")
        if Role.FOCAL_POINT in agency.roles:
            permits.add("subscribe.focal_point")

    if forbids:
        return RefDecision(False, frozenset(forbids))
    if permits:
        return RefDecision(True, frozenset(permits))
    return RefDecision(False, frozenset())
