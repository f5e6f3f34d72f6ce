"""Rejections of unauthenticated submissions, audited as bounded aggregates.

Anything a connected agency publishes reaches the broker, signed or not. Writing one
append-only audit entry per junk submission let one agency add 120,000 permanent
entries, and one rejection copied ~900 KiB of attacker text into the log. Junk that
never proved who signed it (undecodable, above a limit, a bad signature, an unknown or
revoked key) is therefore counted per (sender, rule) and written as one `rejected`
event per interval: the count, the first and last time, a few message ids, one reason
cut to `REASON_CHARS`. Rejections of signed submissions stay individual events: their
sender is accountable for each, and the signature rate-limits them.

The sender still gets an outcome per submission. Counts not yet flushed when a broker
dies are lost (at most one interval's worth); the outcomes were already sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

REASON_CHARS = 300
SAMPLE_IDS = 5


def bounded(text: str, limit: int = REASON_CHARS) -> str:
    """Attacker-controlled text (schema errors quote values) cut to `limit` characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Tally:
    sender: str
    rule: str
    reason: str
    first_at: datetime
    last_at: datetime
    count: int = 0
    message_ids: list[str] = field(default_factory=list)


class RejectionTally:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self._open: dict[tuple[str, str], Tally] = {}

    def add(self, sender: str, rule: str, message_id: str | None, reason: str) -> bool:
        """Count one rejection; whether it opened a new (sender, rule) tally."""
        now = self.clock()
        t = self._open.get((sender, rule))
        new = t is None
        if t is None:
            t = self._open[(sender, rule)] = Tally(sender, rule, bounded(reason), now, now)
        t.count += 1
        t.last_at = now
        if message_id and len(t.message_ids) < SAMPLE_IDS:
            t.message_ids.append(message_id)
        return new

    def drain(self) -> list[Tally]:
        out, self._open = list(self._open.values()), {}
        return out

    def restore(self, tallies: list[Tally]) -> None:
        """Put back tallies whose audit event could not be stored (tried next time)."""
        for t in tallies:
            cur = self._open.get((t.sender, t.rule))
            if cur is None:
                self._open[(t.sender, t.rule)] = t
            else:
                cur.count += t.count
                cur.first_at = min(cur.first_at, t.first_at)
                cur.message_ids = (t.message_ids + cur.message_ids)[:SAMPLE_IDS]
