"""Broker-side checks for life-cycle acts and forwards (Article 10(2) after delivery).

Pure functions: `check_act` and `check_forward` take a verified header (and for a
forward the original envelope), the policy engine, the key directory and `now`, and
return a `Verdict` that `broker.routing.service` turns into deliveries and audit events. They
never read a body: every fact comes from signed headers (`Header.act`, see
schemas/acts.py) and their proofs.

Two kinds of failure:
- `ActError`: the act is malformed or its proofs do not verify. The whole submission is
  rejected (audit `rejected`), as for any forged message.
- a refusal (`Verdict.allowed` False): a well-formed use or forward that the originator's
  restrictions or the policy forbid. Logged as `use_refused` / `forward_refused` with the
  deciding rule, and the holder is told why.

Consents are checked statelessly: a holder that relies on a grant puts the originator's
signed consent decision in its act (`Act.consent`), and the broker verifies it against
the directory. No broker keeps a consent table, so any number of brokers, restarted at
any time, decide alike, and an auditor can re-check every decision from the log's
message ids and the proofs.

"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import msgspec
import structlog

import schemas
from keys.directory import Directory
from keys.envelope import header_hash, verify, verify_signed_header
from keys.errors import CryptoError, KeysError
from policies import holdercheck
from policies.decisions import Consent
from policies.engine import PolicyEngine
from policies.loading import DEFAULT_POLICY_DIR
from policies.names import restriction_errors
from schemas.acts import Act, SignedHeader
from schemas.codes import TLP, USE_CONSENT, ConsentScope, UseKind
from schemas.events import EventType
from schemas.restrictions import Restrictions, effective_restrictions

log = structlog.get_logger("orcon.lifecycle")

# Kinds that are acts about another message and must carry `Header.act`. A
# forward_notice travels only inside a ForwardSubmission (check_forward).
ACT_KINDS = frozenset(
    {"acknowledgment", "use_declaration", "consent_request", "consent_decision",
     "purge_receipt", "forward_notice", "amendment", "withdrawal", "amendment_receipt"}
)
# Acts by the originator that change what holders may keep (checked by `_check_change`).
CHANGE_KINDS = frozenset({"amendment", "withdrawal"})
# Acts that answer another act rather than the information: `Act.request` names it.
_ANSWERS_ACT = frozenset({"consent_decision", "amendment_receipt"})

# Uses that need the originator's consent when a restriction is set, and which consent.
EVIDENTIAL_USES = frozenset({UseKind.EVIDENCE, UseKind.DISCLOSURE_TO_COURT})


class ActError(Exception):
    """A malformed or unverifiable act: the submission is rejected as a whole."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule


class ConsentError(ActError):
    """The consent relied on does not cover this act: a refusal, not a rejection."""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    event: EventType
    original: schemas.Header  # the information acted on (verified)
    original_hash: str  # hex header hash of the original, ties the event to it
    counterpart: str | None = None
    rule: str | None = None
    reason: str | None = None
    details: dict[str, str] = field(default_factory=dict)


# ---- proofs ------------------------------------------------------------------------------


def verify_proof(proof: SignedHeader, directory: Directory, now: datetime,
                 what: str = "original") -> schemas.Header:
    """The header of a signed-header proof, after checking its signature against the
    signer's directory key valid when it was created."""
    try:
        header = schemas.decode_header(proof.header)
    except schemas.SchemaError as exc:
        raise ActError(f"act.{what}", f"the {what} proof is not a valid header: {exc}") from None
    try:
        key = directory.signing_key(header.sender, header.sender_key, now,
                                    created_at=header.created_at)
        verify_signed_header(proof.header, proof.signature, proof.body_digest, key)
    except (KeysError, CryptoError):
        raise ActError(f"act.{what}", f"the {what} proof's signature does not verify") from None
    return header


def proof_of(envelope: schemas.Envelope) -> SignedHeader:
    """A signed-header proof of an envelope (header, signature, ciphertext digest)."""
    import hashlib

    return SignedHeader(header=envelope.header, signature=envelope.signature,
                        body_digest=hashlib.sha256(envelope.ciphertext).digest())


def _act(header: schemas.Header) -> Act:
    if header.act is None:
        raise ActError("act.missing", f"a {header.kind} must carry the signed act it records")
    return header.act


def holder_restrictions(act: Act, original: schemas.Header, holder: str,
                        directory: Directory, now: datetime) -> Restrictions:
    """The restrictions under which `holder` holds the information: the originator's if
    it is a signed recipient; the forwarder's (never looser) if it received a forward,
    proved by the forwarder's signed notice naming it (`act.via`)."""
    if holder in original.recipients:
        return original.restrictions
    if act.via is None:
        raise ActError("act.not-holder",
                       f"{holder} is not among the signed recipients of {original.id}")
    n_act = _forward_of(act.via, original, act, directory, now, "via")
    if n_act is None or n_act.party != holder:
        raise ActError("act.not-holder",
                       f"the forward notice does not show that {holder} received {original.id}")
    return n_act.restrictions or original.restrictions


def _forward_of(proof: SignedHeader, original: schemas.Header, act: Act,
                directory: Directory, now: datetime, what: str) -> Act | None:
    """The act of a verified forward notice that shows a forward of `original` (the
    very header `act` proves) to a named party by one of its signed recipients; None
    if the notice shows no such forward."""
    notice = verify_proof(proof, directory, now, what)
    n_act = notice.act
    if (notice.kind != "forward_notice" or n_act is None or n_act.party is None
            or n_act.message_id != original.id or notice.sender not in original.recipients
            or n_act.original.header != act.original.header):
        return None
    return n_act


def check_consent(proof: SignedHeader, original: schemas.Header, act_original: SignedHeader,
                  holder: str, action: ConsentScope, party: str, directory: Directory,
                  now: datetime) -> str:
    """Verify that the originator granted exactly (`action`, `party`) to `holder` for
    this information, and that the grant has not lapsed. Returns the consent's id."""
    h = verify_proof(proof, directory, now, "consent")
    a = h.act
    if h.kind != "consent_decision" or a is None or h.sender != original.sender:
        raise ConsentError("consent.invalid",
                           f"the consent relied on is not a decision by the originator "
                           f"{original.sender}")
    if a.message_id != original.id or a.original.header != act_original.header:
        raise ConsentError("consent.invalid",
                           f"consent {h.id} is about {a.message_id}, not {original.id}")
    if not a.granted:
        raise ConsentError("consent.refused", f"{original.sender} refused consent {h.id}")
    if a.action != action or a.party != party:
        raise ConsentError("consent.scope",
                           f"consent {h.id} grants {a.action} for {a.party}, "
                           f"not {action} for {party}")
    if holder not in h.recipients:
        raise ConsentError("consent.scope", f"consent {h.id} was granted to "
                           f"{', '.join(h.recipients)}, not to {holder}")
    if a.valid_until is not None and now >= a.valid_until:
        raise ConsentError("consent.expired",
                           f"consent {h.id} lapsed at {a.valid_until.isoformat()}")
    return h.id


# ---- restrictions (pure: used by the broker and by the recipient SDK) -----------------


def loosened_fields(original: Restrictions, proposed: Restrictions) -> list[str]:
    """The fields in which `proposed` is looser than `original` (empty: at least as
    tight). A forwarder may only tighten what the originator restricted."""
    o, p = effective_restrictions(original), effective_restrictions(proposed)
    out: list[str] = []
    if o.purposes and (not p.purposes or not set(p.purposes) <= set(o.purposes)):
        out.append("purposes")
    for name in ("no_evidential_use", "no_onward_dissemination", "no_public_disclosure",
                 "not_to_suspects", "consult_before_action"):
        if getattr(o, name) and not getattr(p, name):
            out.append(name)
    if o.release_to and (not p.release_to or not set(p.release_to) <= set(o.release_to)):
        out.append("release_to")
    if not set(o.exclude) <= set(p.exclude):
        out.append("exclude")
    if o.not_before is not None and (p.not_before is None or p.not_before < o.not_before):
        out.append("not_before")
    if o.expires_at is not None and (p.expires_at is None or p.expires_at > o.expires_at):
        out.append("expires_at")
    if o.destroy_after_days is not None and (
            p.destroy_after_days is None or p.destroy_after_days > o.destroy_after_days):
        out.append("destroy_after_days")
    if not set(o.conditions) <= set(p.conditions):
        out.append("conditions")
    if o.tlp is not None and (p.tlp is None or TLP(p.tlp).rank < TLP(o.tlp).rank):
        out.append("tlp")
    return out


def needed_consent(use: UseKind, evidential: bool, r: Restrictions,
                   policy_dir: Path = DEFAULT_POLICY_DIR) -> ConsentScope | None:
    """Which consent a use needs under restrictions `r`, TLP label applied (None: none
    needed), as the Cedar rules of `policy_dir` decide it (policies.holdercheck); the
    broker asks its engine's rules, the ones that then decide the use."""
    return holdercheck.consent_needed(r, evidential=evidential or use in EVIDENTIAL_USES,
                                      use_kind=str(use), policy_dir=policy_dir)


def use_refusal(r: Restrictions, originator: str, holder: str, purpose: str, use: UseKind,
                evidential: bool, granted: Sequence[ConsentScope],
                now: datetime) -> tuple[str, str] | None:
    """(rule, reason) if the originator's restrictions forbid this use, else None: the
    holder's check before declaring it, by the broker's own Cedar rules and words
    (policies.holdercheck), so the SDK and the broker name a refusal alike."""
    d = holdercheck.use_refusal(r, originator, holder, now, purpose=purpose,
                                evidential=evidential or use in EVIDENTIAL_USES,
                                use_kind=str(use), consents=granted)
    return None if d is None else (d.rule, d.reason)


# ---- acts --------------------------------------------------------------------------------


def _common(header: schemas.Header, directory: Directory,
            now: datetime) -> tuple[Act, schemas.Header, str]:
    act = _act(header)
    original = verify_proof(act.original, directory, now)
    if original.id != act.message_id:
        raise ActError("act.original", f"the proof is of {original.id}, not {act.message_id}")
    expected_reply = act.request if header.kind in _ANSWERS_ACT else act.message_id
    if expected_reply is None or header.in_reply_to != expected_reply:
        raise ActError("act.thread", f"a {header.kind} replies to {expected_reply}")
    return act, original, header_hash(act.original.header).hex()


def _to_originator(header: schemas.Header, original: schemas.Header) -> None:
    if header.recipients != [original.sender]:
        raise ActError("act.addressee",
                       f"a {header.kind} goes to the originator {original.sender} only")


def check_act(header: schemas.Header, engine: PolicyEngine, directory: Directory,
              now: datetime) -> Verdict:
    """Check a life-cycle act submitted by `header.sender` (signature already verified)."""
    if header.kind == "forward_notice":
        raise ActError("act.forward", "a forward notice is submitted inside a forward")
    act, original, hh = _common(header, directory, now)
    actor = header.sender
    details = {"originator": original.sender}

    if header.kind == "consent_decision":
        if actor != original.sender:
            raise ActError("consent.not-originator",
                           f"only the originator {original.sender} decides on consent")
        if act.granted is None or act.action is None or act.party is None:
            raise ActError("act.consent", "a consent decision names action, party and outcome")
        if len(header.recipients) != 1:
            raise ActError("act.addressee", "a consent decision goes to the one holder it binds")
        details |= {"action": str(act.action), "consent": header.id}
        if act.action is ConsentScope.ONWARD_DISSEMINATION:
            details["forward_to"] = act.party
        if act.valid_until is not None:
            details["expires_at"] = act.valid_until.isoformat()
        event = EventType.CONSENT_GRANTED if act.granted else EventType.CONSENT_REFUSED
        return Verdict(True, event, original, hh, header.recipients[0], details=details)

    if header.kind in CHANGE_KINDS:
        return _check_change(header, act, original, hh, engine, directory, now)

    _to_originator(header, original)
    restrictions = holder_restrictions(act, original, actor, directory, now)

    if header.kind == "acknowledgment":
        return Verdict(True, EventType.ACKNOWLEDGED, original, hh, original.sender,
                       details=details)
    if header.kind == "amendment_receipt":
        assert act.request is not None  # _common: it answers the amendment
        details["change"] = act.request
        return Verdict(True, EventType.AMEND_APPLIED, original, hh, original.sender,
                       details=details)
    if header.kind == "purge_receipt":
        if act.purge_reason is not None:
            details["reason"] = str(act.purge_reason)
        if act.request is not None:
            details["change"] = act.request  # the withdrawal complied with
        return Verdict(True, EventType.PURGED, original, hh, original.sender, details=details)
    if header.kind == "consent_request":
        if act.action is None or act.party is None:
            raise ActError("act.consent", "a consent request names the action and the party")
        details["action"] = str(act.action)
        if act.action is ConsentScope.ONWARD_DISSEMINATION:
            details["forward_to"] = act.party
        elif act.party != actor:
            raise ActError("act.consent", f"{actor} can ask consent for its own use only")
        return Verdict(True, EventType.CONSENT_REQUESTED, original, hh, original.sender,
                       details=details)
    if header.kind == "use_declaration":
        return _check_use(header, act, original, hh, restrictions, engine, directory, now)
    raise ActError("act.kind", f"{header.kind} is not a life-cycle act")


def _check_change(header: schemas.Header, act: Act, original: schemas.Header, hh: str,
                  engine: PolicyEngine, directory: Directory, now: datetime) -> Verdict:
    """An amendment or withdrawal: only the originator sends one, only to holders it
    sealed the information to, and an amendment only tightens: against the original
    and against the amendment in force (`act.amends`, the originator's signed header)."""
    what = "an amendment" if header.kind == "amendment" else "a withdrawal"
    if header.sender != original.sender:
        raise ActError("amend.not-originator",
                       f"only the originator {original.sender} amends or withdraws "
                       f"{original.id}; {header.sender} sent {what}")
    holders = set(original.recipients)
    for proof in act.forwards:
        na = _forward_of(proof, original, act, directory, now, "forward")
        if na is None or na.party is None:
            raise ActError("act.forwards", f"a forward notice in {what} does not show a "
                           f"forward of {original.id} by one of its recipients")
        holders.add(na.party)
    stray = sorted(set(header.recipients) - holders)
    if stray:
        raise ActError("act.addressee", f"{what} goes to holders of {original.id} only, "
                       f"not to {', '.join(stray)}")
    details = {"originator": original.sender, "change": header.id,
               "holders": ",".join(header.recipients)}
    if header.kind == "withdrawal":
        return Verdict(True, EventType.WITHDRAWN, original, hh, details=details)
    new = act.restrictions
    if new is None:
        raise ActError("act.amend", "an amendment carries the new restrictions")
    base = original.restrictions
    if act.amends is not None:
        prev = verify_proof(act.amends, directory, now, "amends")
        pa = prev.act
        if (prev.kind != "amendment" or prev.sender != original.sender or pa is None
                or pa.message_id != original.id or pa.restrictions is None):
            raise ActError("act.amends", f"the amendment in force is not an amendment of "
                           f"{original.id} by {original.sender}")
        base = pa.restrictions
    details |= amended_details(new)
    unknown = _unknown_party(new, engine)
    if unknown is not None:
        return Verdict(False, EventType.AMEND_REFUSED, original, hh, None, "amend.unknown",
                       f"refused: {unknown}", details)
    loose = sorted(set(loosened_fields(original.restrictions, new))
                   | set(loosened_fields(base, new)))
    if loose:
        return Verdict(False, EventType.AMEND_REFUSED, original, hh, None, "amend.loosen",
                       f"refused: an amendment may only tighten the restrictions of "
                       f"{original.id}, never loosen them ({', '.join(loose)})", details)
    return Verdict(True, EventType.AMENDED, original, hh, details=details)


def _unknown_party(r: Restrictions, engine: PolicyEngine) -> str | None:
    """Fail closed: an amended `exclude` / `release_to` entry that names no country,
    agency or group of the federation would silently match nothing. The names resolve
    as in the message itself (policies.names)."""
    errors = restriction_errors(engine.vocabulary, r, root="header.act")
    return "; ".join(f"{e.path}: {e.message}" for e in errors) or None


def amended_details(r: Restrictions) -> dict[str, str]:
    """The amended restrictions in the audit vocabulary (they replace the original's in
    the `amended` event, so the report judges later uses and purges against them)."""
    r = r.expanded()
    out = {"no_evidential_use": str(r.no_evidential_use).lower(),
           "no_onward_dissemination": str(r.no_onward_dissemination).lower(),
           "consult_before_action": str(r.consult_before_action).lower()}
    if r.purposes:
        out["purposes"] = ",".join(sorted(str(p) for p in r.purposes))
    if r.expires_at is not None:
        out["expires_at"] = r.expires_at.isoformat()
    return out


def _check_use(header: schemas.Header, act: Act, original: schemas.Header, hh: str,
               restrictions: Restrictions, engine: PolicyEngine, directory: Directory,
               now: datetime) -> Verdict:
    holder = header.sender
    if act.purpose is None or act.use is None:
        raise ActError("act.use", "a use declaration names the use and its purpose")
    evidential = act.evidential or act.use in EVIDENTIAL_USES
    details = {"originator": original.sender, "purpose": str(act.purpose),
               "evidential": str(evidential).lower(), "action": str(act.use)}

    def refused(rule: str, reason: str) -> Verdict:
        return Verdict(False, EventType.USE_REFUSED, original, hh, original.sender,
                       rule, reason, details)

    consents: list[Consent] = []
    if act.consent is not None:  # which consent it is: asked of the rules only then
        need = needed_consent(act.use, evidential, restrictions, engine.policy_dir)
        if need is None:
            need = (ConsentScope.EVIDENTIAL_USE if evidential
                    else USE_CONSENT.get(act.use, ConsentScope.EXECUTIVE_ACTION))
        try:
            details["consent"] = check_consent(act.consent, original, act.original, holder,
                                               need, holder, directory, now)
        except ConsentError as exc:
            return refused(exc.rule, f"refused: {exc}")
        consents.append(Consent(holdercheck.CEDAR_CONSENT[need], holder))
    # The policy engine decides: basis and every restriction on use (it applies the TLP
    # label itself), by the rules the holder's own check applied (policies.holdercheck).
    held = msgspec.structs.replace(original, restrictions=restrictions)
    d = engine.decide_use(held, holder, str(act.purpose), evidential, consents, now,
                          use_kind=str(act.use))
    if not d.allowed:
        return refused(d.rule, d.reason)
    return Verdict(True, EventType.USE_DECLARED, original, hh, original.sender, d.rule,
                   d.reason, details)


def check_forward(notice: schemas.Header, original_env: schemas.Envelope,
                  engine: PolicyEngine, directory: Directory, now: datetime) -> Verdict:
    """Check a forward: `notice` is the holder's verified forward_notice, `original_env`
    the original envelope carrying one stanza for the third party."""
    if notice.kind != "forward_notice":
        raise ActError("forward.notice", "a forward is announced by a forward_notice")
    act, original, hh = _common(notice, directory, now)
    holder, third = notice.sender, act.party
    if third is None:
        raise ActError("forward.party", "a forward notice names the third party")
    if (original_env.header != act.original.header
            or original_env.signature != act.original.signature):
        raise ActError("forward.original", "the forwarded envelope is not the one the "
                       "notice names")
    try:
        key = directory.signing_key(original.sender, original.sender_key, now,
                                    created_at=original.created_at)
        verify(original_env, key)
    except (KeysError, CryptoError):
        # Any change to the originator's header (a loosened restriction) lands here.
        raise ActError("forward.signature", "the originator's signature on the forwarded "
                       "message does not verify") from None
    if [st.recipient for st in original_env.stanzas] != [third]:
        raise ActError("forward.stanza", f"a forward carries one stanza, for {third}")
    _to_originator(notice, original)
    details = {"originator": original.sender, "recipient_country": _country(engine, third)}

    def refused(rule: str, reason: str) -> Verdict:
        return Verdict(False, EventType.FORWARD_REFUSED, original, hh, third, rule, reason,
                       details)

    if holder not in original.recipients:
        return refused("forward.not-holder",
                       f"refused: {holder} is not a signed recipient of {original.id}")
    proposed = act.restrictions or original.restrictions
    loose = loosened_fields(original.restrictions, proposed)
    if loose:
        return refused("forward.loosen",
                       f"refused: a forwarder may tighten {original.sender}'s restrictions, "
                       f"never loosen them ({', '.join(loose)})")
    consents: list[Consent] = []
    if act.consent is not None:
        try:
            details["consent"] = check_consent(
                act.consent, original, act.original, holder,
                ConsentScope.ONWARD_DISSEMINATION, third, directory, now)
        except ConsentError as exc:
            return refused(exc.rule, f"refused: {exc}")
        consents.append(Consent("forward", third))
    # The engine reads the restrictions through effective_restrictions: a TLP label
    # forbids onward dissemination as surely as the flag does.
    held = msgspec.structs.replace(original, restrictions=proposed)
    d = engine.decide_forward(held, holder, third, consents, now)
    if not d.allowed:
        return refused(d.rule, d.reason)
    return Verdict(True, EventType.FORWARDED, original, hh, third, d.rule, d.reason, details)


def _country(engine: PolicyEngine, agency: str) -> str:
    a = engine.federation.get_agency(agency)
    return a.country if a is not None else "??"
