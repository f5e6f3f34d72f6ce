"""One parsed message: an envelope and its signed header, decoded once from the bytes.

`parse_message(data)` is the one way from an envelope's bytes to a message a reader
acts on. It checks, in this order and with the errors `decode_envelope` and
`decode_header` raise (one `SchemaError`, field paths under `envelope` and `header`):
the envelope's structure and version, the header's size limits, its commitment to the
content key (present, 32 bytes), then the header's structure, that no map repeats a key,
its version and its semantic rules. It also hashes the header's exact bytes once, the
hash every signature, stanza and audit record of the message is bound to.

A `Message` is frozen: pass it on instead of the bytes, and nothing downstream decodes
or hashes the header again.

    msg = parse_message(data)      # SchemaError when anything above fails
    msg.header.id, msg.header_bytes, msg.header_hash, msg.envelope.stanzas

`MAX_CLOCK_SKEW` is how far ahead of a reader's clock a `created_at` may lie: the
broker refuses a submission dated later than its clock plus its `created_at_max_skew`
(by default this same constant), and a
recipient a message dated later than its own (`check_created_at`), so a rogue broker
or a sender whose clock runs ahead cannot date a message into the future to keep it
fresh past the replay window or to have it sort after what was sent later.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import msgspec

from schemas.codec import decode_header
from schemas.envelope import Envelope, decode_envelope
from schemas.errors import FieldError, SchemaError
from schemas.header import Header

__all__ = ["HEADER_LABEL", "MAX_CLOCK_SKEW", "CreatedAhead", "Message", "check_created_at",
           "header_hash", "parse_message"]

HEADER_LABEL = b"orcon/v1/header\x00"
# Clocks of agencies and brokers synchronised by NTP agree within seconds; five minutes
# leaves room for a badly kept one without letting a message claim a later hour.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def header_hash(header_bytes: bytes) -> bytes:
    """SHA-256 of the header bytes under a domain label (32 bytes). The label keeps this
    hash from ever colliding in meaning with another SHA-256 the federation computes."""
    return hashlib.sha256(HEADER_LABEL + header_bytes).digest()


class Message(msgspec.Struct, frozen=True, gc=False):
    """An envelope with its header decoded and validated, and the header's hash.

    `data` is the envelope's bytes exactly as received (what a store keeps and a
    forward passes on); `header_bytes` are the exact bytes the sender signed."""

    data: bytes
    envelope: Envelope
    header: Header
    header_hash: bytes

    @property
    def header_bytes(self) -> bytes:
        return self.envelope.header

    @property
    def id(self) -> str:
        return self.header.id


def parse_message(data: bytes) -> Message:
    """The message in an envelope's bytes, decoded and validated once (SchemaError)."""
    envelope = decode_envelope(data)
    return Message(data=data, envelope=envelope, header=decode_header(envelope.header),
                   header_hash=header_hash(envelope.header))


class CreatedAhead(SchemaError):
    """A `created_at` later than the reader's clock plus `MAX_CLOCK_SKEW` (rule
    `created_at.skew`)."""


def check_created_at(header: Header, now: datetime, *, path: str = "header") -> None:
    """Refuse a header dated more than `MAX_CLOCK_SKEW` after `now` (the reader's clock),
    with the field, the value and the rule. Exactly the allowance ahead passes, as at
    the broker."""
    if header.created_at > now + MAX_CLOCK_SKEW:
        minutes = MAX_CLOCK_SKEW.total_seconds() / 60
        raise CreatedAhead([FieldError(
            f"{path}.created_at", "created_at.skew",
            f"created_at {header.created_at.isoformat()} is ahead of this reader's clock "
            f"{now.isoformat()} by more than the allowed clock skew of {minutes:g} min")])
