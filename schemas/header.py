"""The signed header: the only part of a message the broker may read."""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.acts import Act
from schemas.codes import (
    Category,
    InfoAccuracy,
    KindName,
    Level,
    SourceReliability,
    Urgency,
    UrgencyReason,
)
from schemas.entities import Timestamp
from schemas.ids import MESSAGE_ID_PATTERN
from schemas.iso import COUNTRY_CODE_PATTERN
from schemas.restrictions import LangTag, PartyName, Restrictions

SCHEMA_VERSION = "1.0"

MessageId = Annotated[str, msgspec.Meta(pattern=MESSAGE_ID_PATTERN)]
KeyId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9]+:[A-Za-z0-9_-]{8,64}\Z")]
CountryCode = Annotated[str, msgspec.Meta(pattern=COUNTRY_CODE_PATTERN)]
KeyCommitment = Annotated[
    bytes,
    msgspec.Meta(
        min_length=32,
        max_length=32,
        description="SHA-256(\"orcon/v1/key-commitment\\0\" || content key), set when sealing",
    ),
]


class Evaluation(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True):
    """Europol 4x4 evaluation codes."""

    source: SourceReliability
    accuracy: InfoAccuracy


class Topics(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """Routing topics that focal points' alert filters match against."""

    route_countries: list[CountryCode] = []
    nationalities: list[CountryCode] = []
    document_types: list[Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{1,2}\Z")]] = []
    transport_modes: list[
        Annotated[str, msgspec.Meta(pattern=r"^(land|sea|air|rail|foot|mixed)\Z")]
    ] = []


class Header(msgspec.Struct, gc=False, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """Routing metadata, signed by the sender over its exact msgpack bytes."""

    v: str
    id: MessageId
    kind: KindName  # equals the body's tag (`schemas.codes.Kind`)
    sender: PartyName
    sender_key: KeyId
    created_at: Timestamp  # zone-aware: a naive time is a schema error
    category: Category
    level: Level
    restrictions: Restrictions = Restrictions()
    # The agency ids the body was sealed to (sorted, unique): a broker can drop
    # recipients but never add one without breaking the signature.
    recipients: list[PartyName] = []
    audience: list[PartyName] = []  # groups, countries or "ALL" the sender addressed
    thread: MessageId | None = None
    in_reply_to: MessageId | None = None
    urgency: Urgency = Urgency.ROUTINE
    urgency_reasons: list[UrgencyReason] = []
    evaluation: Evaluation | None = None
    topics: Topics = Topics()
    languages: list[LangTag] = []
    # Life-cycle acts after delivery (schemas/acts.py): what a use declaration, consent,
    # forward notice, acknowledgment or purge receipt does, signed so the broker can
    # check and audit it without reading the body.
    act: Act | None = None
    # Set by `keys.envelope.seal`; recipients check the key they unwrap against it before
    # decrypting. ChaCha20-Poly1305 alone is not key-committing: without this, a sender
    # can wrap two keys under which one ciphertext opens to two plaintexts, one per
    # recipient, behind one signature. None only in an unsealed draft. Declared last:
    # sealing appends it to the encoded map, and the two encodings then agree.
    key_commitment: KeyCommitment | None = None
