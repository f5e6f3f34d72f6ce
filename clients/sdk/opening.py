"""The one way a delivery is opened on the agency's side, forwarded copies included.

    parse_delivery(bytes)  ->  Delivery: the message (and, for a forwarded copy, the
                               forwarder's signed notice naming us), each parsed once
    open_delivery(...)     ->  Received (the body and what binds us) or Rejection (why)

A forwarded copy reaches the third party by a second route (the holder's forward
notice plus the originator's unchanged envelope), but every check a recipient makes
about itself applies to it exactly as to a direct delivery: named (by the header, or
by the forwarder's signed notice), not dated ahead of this agency's clock by more than
the broker's allowance (`schemas.message.MAX_CLOCK_SKEW`), inside the replay window,
not excluded by id or country, cleared for the level, signatures that verify against
the directory, a body whose kind is the signed header's, not expired. Defense in depth
against a broker that delivers what the policy refused: group membership is not in the
directory, so `release_to` by group is left to the broker and the auditors.

Pure: the time is an argument, the directory and identity are given; the caller keeps
the ids already handed over (`clients.sdk.seen`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

import schemas
from keys.directory import Directory
from keys.envelope import open_envelope, verify
from keys.errors import CryptoError, KeysError
from keys.identity import Identity
from policies.acts import loosened_fields
from schemas.acts import decode_forward, is_forward
from schemas.message import CreatedAhead, Message, check_created_at, parse_message


@dataclass
class Rejection:
    """A delivery the SDK refused to hand over, and why (never the content). `error`:
    the typed error behind `reason` where there is one (field, value and rule)."""

    message_id: str | None
    reason: str
    error: schemas.SchemaError | None = None


@dataclass(frozen=True)
class Delivery:
    """What the broker delivered, parsed once: the message, and for a forwarded copy
    the forwarder's signed notice naming this agency (without stanzas)."""

    message: Message
    notice: Message | None = None

    @property
    def id(self) -> str:
        return self.message.id


@dataclass(frozen=True)
class Received:
    """An opened delivery: the parsed message, its body, the body's bytes as the sender
    sealed them (stored as they are, never re-encoded), and for a forwarded copy the
    forwarder's notice and the restrictions as it tightened them."""

    message: Message
    body: schemas.Body
    plaintext: bytes
    received_at: datetime
    notice: Message | None = None
    forwarded_restrictions: schemas.Restrictions | None = None

    @property
    def header(self) -> schemas.Header:
        return self.message.header

    @property
    def restrictions(self) -> schemas.Restrictions:
        """What binds this agency: a forwarder's tightening, else the signed header's."""
        return self.forwarded_restrictions or self.message.header.restrictions


def parse_delivery(data: bytes) -> Delivery | Rejection:
    """The delivery in `data`: an envelope, or a forward (notice + original)."""
    if not is_forward(data):
        try:
            return Delivery(parse_message(data))
        except schemas.SchemaError as exc:
            return Rejection(None, f"malformed delivery: {exc}")
    try:
        sub = decode_forward(data)
        notice = parse_message(sub.notice)
        return Delivery(parse_message(sub.original), notice)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        # SchemaError is a ValueError: a forward's envelopes are named "malformed forward".
        return Rejection(None, f"malformed forward: {exc}")


def open_delivery(delivery: Delivery, *, identity: Identity, directory: Directory,
                  now: datetime, replay_window: timedelta) -> Received | Rejection:
    """Check, verify and open one delivery addressed to `identity` (see the module)."""
    agency = identity.agency
    msg, notice = delivery.message, delivery.notice
    h = msg.header
    forwarded: schemas.Restrictions | None = None
    if notice is None:
        if agency not in h.recipients:
            return Rejection(h.id, "this agency is not among the signed recipients")
        created_at = h.created_at
    else:
        terms = _forward_terms(notice, msg, agency)
        if isinstance(terms, str):
            return Rejection(h.id, terms)
        forwarded = terms
        # A forward is fresh when the forwarder's notice is (the broker windows it too):
        # the information itself may be older than the window.
        created_at = notice.header.created_at
    try:  # dated ahead: the original (signed by the originator) and a forwarder's notice
        check_created_at(h, now)
        if notice is not None:
            check_created_at(notice.header, now, path="notice.header")
    except CreatedAhead as exc:
        return Rejection(h.id, str(exc), exc)
    if created_at < now - replay_window:
        return Rejection(h.id, "created outside the replay window")
    binding = forwarded or h.restrictions
    refusal = refuses_itself(directory, agency, h.level, binding)
    if refusal is not None:
        return Rejection(h.id, refusal)
    try:
        if notice is not None:
            nh = notice.header
            verify(notice.envelope, directory.signing_key(nh.sender, nh.sender_key, now,
                                                          created_at=nh.created_at),
                   hh=notice.header_hash)
        signer = directory.signing_key(h.sender, h.sender_key, now, created_at=h.created_at)
        plaintext = open_envelope(msg, identity, signer, now=now)
        body = schemas.decode_body(plaintext)
    except CryptoError:
        return Rejection(h.id, "cryptographic verification failed")
    except KeysError as exc:  # unknown or revoked key, replay (keys.errors.ReplayError)
        return Rejection(h.id, f"key refused: {exc}")
    except schemas.SchemaError as exc:
        return Rejection(h.id, f"malformed body: {exc}")
    if type(body).__struct_config__.tag != h.kind:
        return Rejection(h.id, "the body kind disagrees with the signed header")
    expires = binding.expires_at
    if expires is not None and now >= expires:
        return Rejection(h.id, "expired: the originator's use window has closed")
    return Received(message=msg, body=body, plaintext=plaintext, received_at=now,
                    notice=notice, forwarded_restrictions=forwarded)


def _forward_terms(notice: Message, original: Message,
                   agency: str) -> schemas.Restrictions | str:
    """The restrictions a forwarded copy binds us by, or why the notice does not make
    us a holder: it must be a forward notice from a signed recipient of the original,
    about exactly this original, naming us, and it may only tighten."""
    n, o = notice.header, original.header
    act = n.act
    if (n.kind != "forward_notice" or act is None or act.party != agency
            or act.message_id != o.id or act.original.header != original.header_bytes
            or n.sender not in o.recipients):
        return "the forward notice does not name this agency for this message"
    restrictions = act.restrictions or o.restrictions
    if loosened_fields(o.restrictions, restrictions):
        return "the forwarder loosened the originator's restrictions"
    return restrictions


def refuses_itself(directory: Directory, agency: str, level: schemas.Level,
                   restrictions: schemas.Restrictions) -> str | None:
    """Why the restrictions or the level forbid this agency, by what it can check about
    itself in its own signed directory entry (its id, country, clearance and roles)."""
    try:
        me = directory.entry(agency)
    except KeysError:
        return None
    hit = sorted({agency, me.country} & set(restrictions.exclude))
    if hit:
        return f"this agency is excluded by the sender (exclude = {', '.join(hit)})"
    if "auditor" in me.roles:
        return "an auditor never receives content"
    try:
        if schemas.Level(me.clearance).rank < schemas.Level(level).rank:
            return f"clearance {me.clearance} is below {level}"
    except ValueError:
        return f"unknown clearance {me.clearance!r}"
    return None
