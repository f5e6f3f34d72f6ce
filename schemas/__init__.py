"""orcon's standardized messages: msgspec Structs are the single source of truth."""

from schemas.bodies import Body, IntelReport, Narrative
from schemas.codec import decode_body, decode_header, encode, validate_header
from schemas.codes import (
    TLP,
    Category,
    InfoAccuracy,
    Level,
    Purpose,
    SourceReliability,
    Urgency,
    UrgencyReason,
)
from schemas.envelope import Envelope, Stanza, decode_envelope, encode_envelope
from schemas.errors import FieldError, SchemaError
from schemas.header import SCHEMA_VERSION, Evaluation, Header, Topics
from schemas.ids import new_message_id
from schemas.restrictions import Condition, Restrictions
from schemas.wire import Outcome, Refusal, ResolveReply, ResolveRequest

__all__ = [
    "SCHEMA_VERSION",
    "TLP",
    "Body",
    "Category",
    "Condition",
    "Envelope",
    "Evaluation",
    "FieldError",
    "Header",
    "InfoAccuracy",
    "IntelReport",
    "Level",
    "Narrative",
    "Outcome",
    "Purpose",
    "Refusal",
    "ResolveReply",
    "ResolveRequest",
    "Restrictions",
    "SchemaError",
    "SourceReliability",
    "Stanza",
    "Topics",
    "Urgency",
    "UrgencyReason",
    "decode_body",
    "decode_envelope",
    "decode_header",
    "encode",
    "encode_envelope",
    "new_message_id",
    "validate_header",
]
