"""Audit events and the log record that carries them.

What may go in an event: metadata and hashes only. Never message content (bodies,
free-text conditions, names of persons), never key material (secret keys, content keys,
stanzas). Auditors see everything in the log, and the log is append-only: anything
written here can never be erased, so a leak into it is permanent. `header_hash` (hex
SHA-256 of the signed header bytes) is what ties an event to a message without
revealing it.

One log entry (one Merkle leaf) is a `LogRecord`: the event plus its own index and the
leaf hash of the previous entry. Why the record carries those two fields rather than
the bare event: signed tree heads only say "the first N entries hash to R", so from
heads alone a verifier can at best say "something between head 3 and head 4 is wrong".
With the index and the back-link, the first entry that is modified, missing, inserted
or out of order breaks the chain exactly where it happened, and the verifier can name
it. The cost is that whoever writes the AUDIT stream must know the next index, i.e.
one writer (the log maintainer, `AuditLog`) sequences all events; see `log.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from broker.audit.merkle import HASH_SIZE
from schemas.events import EventType

# The `details` vocabulary the report understands. Values are strings so the event
# stays a flat, schema-stable record; booleans are "true"/"false", lists are
# comma-separated, instants are ISO 8601 UTC.
DETAIL_KEYS: dict[str, str] = {
    "kind": "message kind (schemas.header.Header.kind)",
    "category": "Protocol art. 10(1) category: a…f or other",
    "level": "confidentiality level",
    "tlp": "TLP 2.0 label, when the sender used a preset",
    "origin_country": "ISO 3166 alpha-2 country of the originating agency",
    "recipient_country": "ISO 3166 alpha-2 country of the recipient / third party",
    "purposes": "comma-separated purposes the originator allowed",
    "no_evidential_use": "true if evidential use needs the originator's consent (H1)",
    "no_onward_dissemination": "true if forwarding needs the originator's consent (H2)",
    "consult_before_action": "true if executive action needs consultation",
    "expires_at": "end of the use window / retention (ISO 8601)",
    "purpose": "purpose declared for a use or requested in a consent request",
    "evidential": "true if the declared use is evidential (judicial proceedings)",
    "consent": "message id of the consent decision relied on, if any",
    "forward_to": "third party a consent request asks to forward to (else: asks for use)",
    "originator": "agency that originated the information (for forwards, uses)",
    "change": "message id of the amendment / withdrawal (amended, withdrawn), or of the "
              "one a receipt complies with (amend_applied, purged)",
    "holders": "comma-separated holders an amendment / withdrawal was addressed to",
    "reason": "purge reason (expired, retention_elapsed, originator_request...)",
    "key_id": "key identifier, for key_changed",
    "event_id": "the broker's idempotency key, so a retried event is logged once",
    "stage": "resolve: a refusal the sender was shown before sealing (else: routing)",
    "action": "key_changed: added / retired / revoked / entry (re-signed) / refused; "
              "policy_changed: registry / refused",
    "serial": "serial of the root-signed record accepted (entry, registry)",
    "previous_serial": "serial of the record it replaced",
    "serial_in_force": "serial of the registry kept when a version is refused",
    "revision": "key-value bucket revision of the version applied or refused",
    "count": "aggregated rejections: how many submissions (same sender and rule)",
    "first_at": "aggregated rejections: the first one in the interval (ISO 8601)",
    "last_at": "aggregated rejections: the last one in the interval (ISO 8601)",
    "message_ids": "aggregated rejections: a few of the message ids, comma-separated",
}

UtcDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class AuditEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One decision or action. `actor` is the agency that acted (the sender for
    submitted/forwarded, the recipient for acknowledged/use_declared, the originator
    for consent decisions); `counterpart` the other party (recipient, third party,
    originator asked for consent)."""

    type: EventType
    at: UtcDatetime
    broker: str
    actor: str
    message_id: str | None = None
    counterpart: str | None = None
    rule: str | None = None
    reason: str | None = None
    header_hash: str | None = None
    policy_version: str | None = None
    details: dict[str, str] = msgspec.field(default_factory=dict)


class LogRecord(msgspec.Struct, frozen=True, array_like=True):
    """One log entry: `prev` is the leaf hash of entry `index - 1` (32 zero bytes for
    entry 0). array_like keeps the framing a fixed three-element msgpack array."""

    index: int
    prev: bytes
    event: AuditEvent


GENESIS_PREV = bytes(HASH_SIZE)

_encoder = msgspec.msgpack.Encoder()
_event_decoder = msgspec.msgpack.Decoder(AuditEvent)
_record_decoder = msgspec.msgpack.Decoder(LogRecord)


def encode_event(event: AuditEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(data: bytes) -> AuditEvent:
    """Raises msgspec.DecodeError / msgspec.ValidationError on malformed input."""
    return _event_decoder.decode(data)


def encode_record(record: LogRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(data: bytes) -> LogRecord:
    """Raises msgspec.DecodeError / msgspec.ValidationError on malformed input."""
    rec = _record_decoder.decode(data)
    if rec.index < 0 or len(rec.prev) != HASH_SIZE:
        raise msgspec.ValidationError("record index must be ≥ 0 and prev a 32-byte hash")
    return rec
