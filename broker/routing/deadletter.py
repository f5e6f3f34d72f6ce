"""The dead-letter stream: submissions no broker could finish.

Routing never raises (service.py turns any failure into a typed rejection), so what
reaches here is a result the stores refused again and again (a stream limit, a lost
quorum). After the consumer's last delivery attempt (`streams.SUBMIT_MAX_DELIVER`) the
broker stores the submission here with why, acknowledges it so it stops blocking, logs
`dead_lettered`, counts `orcon_dead_letters_total` and appends a `dead_lettered` audit
event. Operators list them with `orcon ops dead-letters --data-dir DIR`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NotFoundError

from transport import subjects as s


@dataclass(frozen=True)
class DeadLetter:
    seq: int
    at: str
    sender: str
    message_id: str
    attempts: str
    error: str
    broker: str
    size: int
    sha256: str


def headers(*, sender: str, message_id: str, attempts: int, error: str, broker: str,
            stream_seq: int, at: datetime) -> dict[str, str]:
    # Metadata only, bounded: the submission itself is the payload.
    return {"Orcon-Sender": sender, "Orcon-Message-Id": message_id,
            "Orcon-Attempts": str(attempts), "Orcon-Error": error[:200],
            "Orcon-Broker": broker, "Orcon-Stream-Seq": str(stream_seq),
            "Orcon-At": at.astimezone(UTC).isoformat()}


async def list_dead_letters(nc: NATS, limit: int = 1000) -> list[DeadLetter]:
    """The newest `limit` dead letters, oldest first."""
    js = nc.jetstream()
    info = await js.stream_info(s.DEADLETTER_STREAM)
    first, last = info.state.first_seq or 0, info.state.last_seq or 0
    out: list[DeadLetter] = []
    for seq in range(max(first, last - limit + 1), last + 1):
        if seq <= 0:
            continue
        try:
            msg = await js.get_msg(s.DEADLETTER_STREAM, seq)
        except (NotFoundError, NatsTimeoutError):
            continue
        h = msg.headers or {}
        data = msg.data or b""
        out.append(DeadLetter(seq=seq, at=h.get("Orcon-At", ""),
                              sender=h.get("Orcon-Sender", ""),
                              message_id=h.get("Orcon-Message-Id", ""),
                              attempts=h.get("Orcon-Attempts", ""),
                              error=h.get("Orcon-Error", ""), broker=h.get("Orcon-Broker", ""),
                              size=len(data), sha256=hashlib.sha256(data).hexdigest()))
    return out
