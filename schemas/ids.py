"""Time-ordered message ids (ULID layout: 48-bit milliseconds, 80 random bits)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import UTC, datetime

from schemas.clock import utcnow

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MESSAGE_ID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}\Z"
# The one shape of a registry name (agency id, group id or ISO 3166-1 alpha-2 country):
# one NATS subject token, so an id can never inject a subject wildcard or separator.
# `\Z`, not `$`: `$` also matches before a trailing newline.
PARTY_NAME_PATTERN = r"^[A-Z0-9][A-Z0-9-]{1,39}\Z"
PARTY_NAME_RE = re.compile(PARTY_NAME_PATTERN)


def new_message_id(
    now: datetime | None = None, rand: Callable[[int], bytes] = os.urandom
) -> str:
    """A 26-character id that sorts by creation time; `now` and `rand` are injectable."""
    ts = now if now is not None else utcnow()
    if ts.tzinfo is None:  # read as local time it would sort wrongly
        raise ValueError("new_message_id: `now` must be timezone-aware")
    millis = int(ts.timestamp() * 1000)
    value = (millis << 80) | int.from_bytes(rand(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def message_id_time(message_id: str) -> datetime:
    value = 0
    for ch in message_id:
        value = (value << 5) | _CROCKFORD.index(ch)
    return datetime.fromtimestamp((value >> 80) / 1000, UTC)
