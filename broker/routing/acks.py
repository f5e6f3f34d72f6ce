"""`AckWatcher` re-notifies urgent messages that are not acknowledged in time (the
recipient's `acknowledgment` act, delivered to the originator, ends the watch)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

import msgspec
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

import schemas
from schemas.clock import Clock, utcnow
from schemas.codes import Urgency
from transport import subjects as s

log = structlog.get_logger("orcon.lifecycle")

URGENT_ACK_TIMEOUT = timedelta(minutes=15)


def watch_interval(timeout: timedelta) -> float:
    """How often the watcher looks: a quarter of the timeout, between 0.2 s and 5 s, so
    a short development timeout is honoured within a fraction of itself."""
    return min(5.0, max(0.2, timeout.total_seconds() / 4))


@dataclass
class _Pending:
    sender: str
    created_at: datetime
    data: bytes  # the delivery as published, re-published as the reminder
    reminders: int = 0


class _EnvelopeHeader(msgspec.Struct, array_like=True):
    v: int
    header: bytes


class _ActRef(msgspec.Struct):
    message_id: str = ""


class _WatchedHeader(msgspec.Struct):
    """The header fields the acknowledgment watcher reads; the rest are skipped."""

    id: str = ""
    sender: str = ""
    kind: str = ""
    urgency: str = ""
    created_at: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    act: _ActRef | None = None


_envelope_header = msgspec.msgpack.Decoder(_EnvelopeHeader)
_watched_header = msgspec.msgpack.Decoder(_WatchedHeader)


class AckWatcher:
    """Re-notifies urgent messages that their recipient has not acknowledged within
    `timeout` of their creation, and tells the sender (an Outcome with status
    "unacknowledged" and one `ack.overdue` entry per recipient), up to `max_reminders`
    times, once per `timeout`.

    It reads the DELIVER stream (headers only) from the start, so it rebuilds its state
    after a restart; an acknowledgment is the recipient's `acknowledgment` act delivered
    to the originator. Time comes from `clock` and the signed `created_at`, so tests
    drive it deterministically with `tick()`. Run one per federation (it needs the
    broker's credentials: it publishes to any agency's delivery subject)."""

    def __init__(self, nc: NATS, *, timeout: timedelta = URGENT_ACK_TIMEOUT,
                 max_reminders: int = 3, interval: float = 5.0,
                 clock: Clock = utcnow) -> None:
        self.nc, self.js = nc, nc.jetstream()
        self.timeout, self.max_reminders, self.interval = timeout, max_reminders, interval
        self.clock = clock
        self.pending: dict[tuple[str, str], _Pending] = {}
        self._acked: set[tuple[str, str]] = set()
        self._sub: object | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, loop: bool = True) -> None:
        self._sub = await self.js.subscribe("orcon.deliver.*", ordered_consumer=True,
                                            cb=self._on_msg)
        if loop:
            self._task = asyncio.create_task(self._run(), name="ack-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()  # type: ignore[attr-defined]

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except Exception as exc:  # keep watching; a failed publish retries next tick
                log.warning("ack_watch_failed", error=type(exc).__name__)

    async def _on_msg(self, msg: Msg) -> None:
        self.observe(s.agency_of(msg.subject), msg.data)

    def observe(self, recipient: str, data: bytes) -> None:
        # Only the fields it needs, unvalidated: every delivery was decoded, validated
        # and verified by the broker that published it (the full decode cost the audit
        # sequencer's process more CPU per message than the sequencer itself).
        try:
            header = _watched_header.decode(_envelope_header.decode(data).header)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
            return  # forwards and anything else: not an urgent original
        if header.kind == "acknowledgment" and header.act is not None:
            key = (header.act.message_id, header.sender)
            self._acked.add(key)
            self.pending.pop(key, None)
            return
        key = (header.id, recipient)
        if (header.urgency == Urgency.URGENT.value and header.created_at is not None
                and key not in self._acked):
            self.pending.setdefault(key, _Pending(header.sender, header.created_at, data))

    async def tick(self) -> list[tuple[str, str]]:
        """Send the reminders that are due; returns the (message id, recipient) pairs."""
        now, due = self.clock(), []
        for (mid, rcpt), p in sorted(self.pending.items()):
            if p.reminders >= self.max_reminders:
                continue
            if now - p.created_at < self.timeout * (p.reminders + 1):
                continue
            p.reminders += 1
            n = p.reminders
            await self.js.publish(s.deliver(rcpt), p.data,
                                  headers={"Nats-Msg-Id": f"{mid}:{rcpt}:reminder:{n}"})
            minutes = int((now - p.created_at).total_seconds() // 60)
            outcome = schemas.Outcome(
                message_id=mid, sender=p.sender, status="unacknowledged",
                refused=[schemas.Refusal(rcpt, "ack.overdue",
                                         f"{rcpt} has not acknowledged this urgent message "
                                         f"{minutes} min after it was sent; reminder {n} sent")])
            await self.js.publish(s.report(p.sender), schemas.encode(outcome),
                                  headers={"Nats-Msg-Id": f"{mid}:{rcpt}:unacked:{n}"})
            due.append((mid, rcpt))
            log.info("ack_reminder", message_id=mid, recipient=rcpt, reminder=n)
        return due
