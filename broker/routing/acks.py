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
from nats.js.errors import NotFoundError

import schemas
from broker.routing import streams
from schemas.clock import Clock, utcnow
from schemas.codes import Urgency
from transport import subjects as s

log = structlog.get_logger("orcon.lifecycle")

URGENT_ACK_TIMEOUT = timedelta(minutes=15)


def watch_interval(timeout: timedelta) -> float:
    """How often the watcher looks: a quarter of the timeout, between 0.2 s and 5 s, so
    a short development timeout is honoured within a fraction of itself."""
    return min(5.0, max(0.2, timeout.total_seconds() / 4))


# The facts the watcher needs ride on each delivery as one NATS header, set by the broker
# (only the broker and the watcher may publish on delivery subjects, so the watcher can
# trust it; recipients must not: it is not signed). One header with space-separated
# tokens, because nats-py parses header lines one character at a time (and the watcher
# saw every delivery before unwatched ones got a subject of their own). The tokens come
# from a verified, validated header: none contains a space or a line break.
#   "-"                                   nothing to watch (not urgent, not an
#                                         acknowledgment; and every forward): published
#                                         on the unwatched subject, never seen by it
#   "urgent <id> <sender> <created_at>"   an urgent original (created_at in ISO 8601)
#   "ack <acknowledged id> <sender>"      an acknowledgment act by <sender>
#   "reminder <id> <n>"                   the watcher's own n-th reminder of <id>
# A delivery without it (published before brokers set it) or with a value the watcher
# cannot read is read the old way: its payload fetched by stream sequence and decoded.
WATCH_HEADER = "Orcon-Watch"
# Shared by nearly every delivery: publishers must copy it, never add to it
# (transport.jspub.AckPublisher copies it to add the message id).
UNWATCHED: dict[str, str] = {WATCH_HEADER: "-"}


def delivery_subject(recipient: str, watch: dict[str, str]) -> str:
    """Where a delivery with these headers goes: on the subject the watcher reads only if
    it has something to watch, so the others (nearly all) never reach it. Anything but
    an explicit "-" is watched (fail closed: never forget an urgent message)."""
    if watch.get(WATCH_HEADER) == "-":
        return s.deliver_unwatched(recipient)
    return s.deliver(recipient)


def watch_headers(header: schemas.Header) -> dict[str, str]:
    """The broker's headers for each delivery of a routed message (not for a forward's
    copy to the third party: `UNWATCHED`)."""
    if header.kind == "acknowledgment" and header.act is not None:
        return {WATCH_HEADER: f"ack {header.act.message_id} {header.sender}"}
    if header.urgency == Urgency.URGENT:
        return {WATCH_HEADER: (f"urgent {header.id} {header.sender} "
                               f"{header.created_at.isoformat()}")}
    return UNWATCHED


@dataclass
class _Pending:
    sender: str
    created_at: datetime
    seq: int  # the delivery's stream sequence: fetched and re-published as the reminder
    reminders: int = 0


class _EnvelopeHeader(msgspec.Struct, array_like=True):
    v: int
    header: bytes


class _ActRef(msgspec.Struct):
    message_id: str = ""


class _WatchedHeader(msgspec.Struct):
    """The header fields the acknowledgment watcher reads from a delivery without
    `WATCH_HEADER`; the rest are skipped."""

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

    It reads the DELIVER stream from the start with a headers-only consumer of the
    watched delivery subjects only (`transport.subjects.deliver`: the broker puts every
    other delivery on `deliver_unwatched`, see `delivery_subject`), so it rebuilds its
    state after a restart and no payload, nor any unwatched delivery, reaches it (the
    broker's `WATCH_HEADER` says what it needs); a reminder fetches its one delivery by
    stream sequence. An
    acknowledgment is the recipient's `acknowledgment` act delivered to the originator.
    Time comes from `clock` and the signed `created_at`, so tests drive it
    deterministically with `tick()`. Run one per federation (it needs the watcher's or
    the broker's credentials: it publishes to any agency's delivery subject)."""

    def __init__(self, nc: NATS, *, timeout: timedelta = URGENT_ACK_TIMEOUT,
                 max_reminders: int = 3, interval: float = 5.0,
                 clock: Clock = utcnow) -> None:
        self.nc, self.js = nc, nc.jetstream()
        self.timeout, self.max_reminders, self.interval = timeout, max_reminders, interval
        self.clock = clock
        self.pending: dict[tuple[str, str], _Pending] = {}
        self._acked: set[tuple[str, str]] = set()
        # Deliveries without a readable WATCH_HEADER whose payload was fetched.
        self.fetched_unlabelled = 0
        self._unread: dict[int, str] = {}  # unlabelled deliveries not yet read: seq -> recipient
        self._sub: object | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, *, loop: bool = True) -> None:
        self._sub = await self.js.subscribe(
            s.DELIVER_WATCHED, ordered_consumer=True, cb=self._on_msg,
            config=streams.ack_watch_consumer_config())
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
        label = msg.headers.get(WATCH_HEADER) if msg.headers else None
        if label == "-":
            return  # nearly every delivery: nothing else is looked at
        recipient = s.agency_of(msg.subject)
        seq = msg.metadata.sequence.stream
        if label is not None and self._label(recipient, seq, label):
            return
        # Fail closed: a delivery that does not say what it is (published before brokers
        # labelled deliveries) is read whole, so no urgent message is ever forgotten.
        self.fetched_unlabelled += 1
        await self._read_whole(seq, recipient)

    async def _read_whole(self, seq: int, recipient: str) -> None:
        try:
            raw = await self.js.get_msg(s.DELIVER_STREAM, seq)
        except NotFoundError:
            self._unread.pop(seq, None)  # no longer stored: nothing left to re-notify
            log.warning("ack_watch_delivery_gone", seq=seq)
            return
        except Exception as exc:
            # Not skipped: tick() tries again until it is read.
            self._unread[seq] = recipient
            log.warning("ack_watch_read_failed", seq=seq, error=type(exc).__name__)
            return
        self._unread.pop(seq, None)
        self.observe(recipient, raw.data or b"", seq)

    def _label(self, recipient: str, seq: int, label: str) -> bool:
        """Apply a WATCH_HEADER value; False if it cannot be read."""
        kind, _, rest = label.partition(" ")
        parts = rest.split(" ")
        try:
            if kind == "urgent" and len(parts) == 3:
                mid, sender, created = parts
                self._urgent((mid, recipient), sender, datetime.fromisoformat(created), seq)
                return True
            if kind == "ack" and len(parts) == 2:
                self._ack((parts[0], parts[1]))
                return True
            if kind == "reminder" and len(parts) == 2:
                # After a restart, reminders already sent are not sent again.
                pending = self.pending.get((parts[0], recipient))
                if pending is not None:
                    pending.reminders = max(pending.reminders, int(parts[1]))
                return True
        except ValueError:
            return False
        return False

    def _ack(self, key: tuple[str, str]) -> None:
        self._acked.add(key)
        self.pending.pop(key, None)

    def _urgent(self, key: tuple[str, str], sender: str, created_at: datetime,
                seq: int) -> None:
        if created_at.tzinfo is None:
            raise ValueError("created_at without a time zone")
        if key not in self._acked:
            self.pending.setdefault(key, _Pending(sender, created_at, seq))

    def observe(self, recipient: str, data: bytes, seq: int) -> None:
        """A delivery without WATCH_HEADER, read from its payload: only the fields it
        needs, unvalidated (every delivery was decoded, validated and verified by the
        broker that published it)."""
        try:
            header = _watched_header.decode(_envelope_header.decode(data).header)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
            return  # forwards and anything else: not an urgent original
        if header.kind == "acknowledgment" and header.act is not None:
            self._ack((header.act.message_id, header.sender))
            return
        if header.urgency == Urgency.URGENT.value and header.created_at is not None:
            self._urgent((header.id, recipient), header.sender, header.created_at, seq)

    async def tick(self) -> list[tuple[str, str]]:
        """Send the reminders that are due; returns the (message id, recipient) pairs."""
        for seq, recipient in sorted(self._unread.items()):
            await self._read_whole(seq, recipient)
        now, due = self.clock(), []
        for (mid, rcpt), p in sorted(self.pending.items()):
            if p.reminders >= self.max_reminders:
                continue
            if now - p.created_at < self.timeout * (p.reminders + 1):
                continue
            n = p.reminders + 1
            try:
                data = (await self.js.get_msg(s.DELIVER_STREAM, p.seq)).data or b""
            except NotFoundError:
                # The delivery is no longer stored: the sender is still told below.
                log.warning("ack_reminder_source_gone", message_id=mid, recipient=rcpt)
            else:
                await self.js.publish(s.deliver(rcpt), data, headers={
                    "Nats-Msg-Id": f"{mid}:{rcpt}:reminder:{n}",
                    WATCH_HEADER: f"reminder {mid} {n}"})
            p.reminders = n
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
