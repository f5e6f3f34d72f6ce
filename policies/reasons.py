"""The rule ids of every decision and the one sentence that explains each: the deciding
rule among several, and its wording, for the broker, the SDK and the CLI alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from policies.decisions import Decision
from policies.federation import Federation
from policies.names import RULE_RESTRICTION
from schemas.header import Header
from schemas.restrictions import Restrictions, effective_restrictions

RULE_NO_BASIS = "default.no-basis"
RULE_DENY = "default.deny"
RULE_UNKNOWN_AGENCY = "registry.unknown-agency"
RULE_UNKNOWN_SENDER = "registry.unknown-sender"
RULE_ENGINE_ERROR = "engine.error"
RULE_UNRESOLVED = RULE_RESTRICTION  # a restriction names what the registry does not know
RULE_ORIGINATOR = "use.originator"

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

# A use is refused first for what would refuse any use; an export (a use that takes
# the information out of orcon) then for TLP:RED, which no consent lifts, and only last
# for onward dissemination, which the originator's consent lifts: telling the holder
# to ask for consent is useful only when nothing else stands in the way.
USE_FORBID_PRECEDENCE: tuple[str, ...] = (
    *(r for r in FORBID_PRECEDENCE if r != "restriction.no_onward_dissemination"),
    "restriction.tlp",
    "restriction.no_onward_dissemination",
)

CONTENT_ACTIONS = ("receive", "forward", "use")

_RANK = {r: i for i, r in enumerate(FORBID_PRECEDENCE)}
_USE_RANK = {r: i for i, r in enumerate(USE_FORBID_PRECEDENCE)}


def first_forbid(ids: Sequence[str], action: str = "") -> str:
    """The forbid to report among those that apply to `action`."""
    prec = _USE_RANK if action == "use" else _RANK
    return min(ids, key=lambda i: (prec.get(i, len(prec)), i))


def refusal(recipient: str, rule: str, reason: str, version: str) -> Decision:
    """A refusal decided outside Cedar, by one rule."""
    return Decision(recipient, False, rule, reason, version, (rule,))


def unknown_agency(agency: str, version: str) -> Decision:
    return refusal(agency, RULE_UNKNOWN_AGENCY, f"refused: {agency} is not a registered agency",
                   version)


def unknown_sender(principal: str, sender: str, version: str) -> Decision:
    return refusal(principal, RULE_UNKNOWN_SENDER,
                   f"refused: sender {sender} is not a registered agency", version)


def engine_error(principal: str, errors: Sequence[str], ids: Sequence[str],
                 version: str) -> Decision:
    # Cedar skips a policy that errors; a skipped forbid must not turn into a
    # delivery, so any evaluation error refuses.
    return Decision(principal, False, RULE_ENGINE_ERROR,
                    f"refused: the policy engine could not evaluate the request "
                    f"({errors[0]})", version, tuple(ids))


def _fmt_time(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _tlp_note(raw: Restrictions, field_name: str) -> str:
    """" (TLP:RED)" when the label, not the sender's own flag, sets `field_name`: the
    person refused should learn where the restriction comes from."""
    if raw.tlp is None or getattr(raw, field_name):
        return ""
    return f" (TLP:{raw.tlp!s})"


# The restrictions on a holder's use that the originator's consent lifts: what each
# forbids, in words, and the field whose TLP origin the sentence names ("": none named).
_LIFTED_BY_CONSENT: dict[str, tuple[str, str]] = {
    "restriction.no_evidential_use": ("forbids evidential use", ""),
    "restriction.no_public_disclosure": ("forbids public disclosure", "no_public_disclosure"),
    "restriction.not_to_suspects": ("forbids showing the information to suspects",
                                    "not_to_suspects"),
    "restriction.consult_before_action": ("asks to be consulted before executive action",
                                          ""),
    # On a use, onward dissemination is an export (a forward is worded above).
    "restriction.no_onward_dissemination": ("forbids onward dissemination (an export)", ""),
}


def forbid_reason(rule: str, *, action: str, sender: str, principal: str,
                  raw: Restrictions, level: str, purpose: str,
                  fed: Federation | None) -> str:
    """The sentence for a refusal of `action` by forbid `rule`. `raw` are the
    restrictions as the sender wrote them (the TLP label not yet applied); `fed` names
    the matching exclusion and the principal's clearance (None: the caller has no
    registry)."""
    r = effective_restrictions(raw)
    if rule == "restriction.self":
        return f"refused: {principal} is the sender of the message"
    if rule == "role.auditor":
        return f"refused: {principal} is an auditor and sees metadata, never content"
    if rule == "restriction.exclude":
        hits = [n for n in r.exclude if fed is not None and fed.name_matches(n, principal)]
        return (f"refused: {principal} is excluded by the sender "
                f"(exclude = {', '.join(hits or r.exclude)})")
    if rule == "restriction.release_to":
        return (f"refused: {principal} is not among those the sender released to "
                f"(release_to = {', '.join(r.release_to)})")
    if rule == "restriction.clearance":
        agency = fed.get_agency(principal) if fed is not None else None
        cl = agency.clearance.value if agency else "unknown"
        return f"refused: clearance {cl} of {principal} is below {level}"
    if rule == "restriction.not_before" and r.not_before is not None:
        return f"refused: the sender forbids use before {_fmt_time(r.not_before)}"
    if rule == "restriction.expires_at" and r.expires_at is not None:
        return f"refused: the information expired at {_fmt_time(r.expires_at)}"
    if rule == "restriction.tlp":
        return (f"refused: {sender} marked the information TLP:RED (named recipients "
                "only): it may not be exported from orcon, even with consent")
    if rule == "restriction.no_onward_dissemination" and action == "forward":
        return (f"refused: {sender} forbids onward dissemination"
                f"{_tlp_note(raw, 'no_onward_dissemination')} and has "
                f"not consented to forwarding to {principal}")
    if rule == "restriction.purpose":
        allowed = ", ".join(str(p) for p in r.purposes)
        return (f"refused: purpose {purpose or '(none)'} is not among the purposes "
                f"the sender permits ({allowed})")
    if rule in _LIFTED_BY_CONSENT:
        forbids, label_field = _LIFTED_BY_CONSENT[rule]
        note = _tlp_note(raw, label_field) if label_field else ""
        return f"refused: {sender} {forbids}{note} and has not consented to it by {principal}"
    return f"refused by policy {rule}"


def explain(action: str, header: Header, principal: str, allowed: bool, ids: Sequence[str],
            errors: Sequence[str], *, version: str, basis_order: Mapping[str, int],
            fed: Federation, purpose: str = "") -> Decision:
    """The decision on a message, from what Cedar answered."""
    if errors:
        return engine_error(principal, errors, ids, version)
    if allowed:
        # The originator's own use needs no agreement, so say so first.
        order = {RULE_ORIGINATOR: -1, **basis_order}
        rule = min(ids, key=lambda i: (order.get(i, len(order)), i))
        if rule.startswith("basis."):
            reason = f"permitted under {rule.removeprefix('basis.')}"
        elif rule == RULE_ORIGINATOR:
            reason = f"permitted: {principal} is the originator of the information"
        else:
            reason = f"permitted by policy {rule}"
        return Decision(principal, True, rule, reason, version, tuple(ids))
    if not ids:
        if action in CONTENT_ACTIONS:
            return Decision(principal, False, RULE_NO_BASIS,
                            f"refused: no legal basis covers {header.sender} and {principal} "
                            f"for category {header.category!s}", version, ())
        return Decision(principal, False, RULE_DENY,
                        f"refused: no policy permits {principal} to {action}", version, ())
    rule = first_forbid(ids, action)
    reason = forbid_reason(rule, action=action, sender=header.sender, principal=principal,
                           raw=header.restrictions, level=str(header.level),
                           purpose=purpose, fed=fed)
    return Decision(principal, False, rule, reason, version, tuple(ids))


def explain_simple(agency: str, what: str, allowed: bool, ids: Sequence[str],
                   errors: Sequence[str], version: str) -> Decision:
    """The decision on an action about no message's content (`what`, in words)."""
    if errors:
        return engine_error(agency, errors, ids, version)
    if allowed:
        return Decision(agency, True, ids[0], f"permitted: {agency} may {what}", version,
                        tuple(ids))
    if ids:
        rule = first_forbid(ids)
        return Decision(agency, False, rule,
                        f"refused: {agency} may not {what} (policy {rule})", version,
                        tuple(ids))
    return Decision(agency, False, RULE_DENY,
                    f"refused: no policy permits {agency} to {what}", version, ())
