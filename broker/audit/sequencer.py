"""The audit log on JetStream: brokers submit events, one sequencer appends them.

Brokers (any number) publish `AuditEvent`s to the AUDITIN work queue. The sequencer,
the single writer of the AUDIT stream, is the NATS side of an `AuditLog` (log.py),
which does the sequencing: each pull's events are sealed as one batch of `LogRecord`s
(index and back-link, see events.py), appended with `Nats-Expected-Last-Sequence` (so
a second writer could never interleave unnoticed) and committed to the log once
JetStream stored every one of them; the log signs the tree heads the sequencer
publishes to AUDITHEAD, periodically and on request.

The AUDIT and AUDITHEAD streams deny delete and purge; the sequencer is stateless
across restarts: it rebuilds the log by reading AUDIT back, through the log's chain
check (`AuditLog.adopt`: a foreign entry or a broken link is counted and logged, and
stays a leaf, since the stream is append-only).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict

import msgspec
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from broker.audit.events import AuditEvent
from broker.audit.heads import SignedTreeHead
from broker.audit.log import AuditLog, Sealed
from broker.metrics import Metrics
from keys.identity import Identity
from schemas.clock import Clock, utcnow
from transport import subjects as s
from transport.jspub import Inline, PublishNotAcknowledged, is_refusal, refusal
from transport.pull import StandingPulls

log = structlog.get_logger("orcon.audit")

SEQUENCER_CONSUMER = "sequencer"
EVENT_ID = "event_id"  # the details key carrying the broker's idempotency key
# The event ids the sequencer remembers, to drop an event a redelivered submission
# brings again (the broker's combined AUDITIN messages carry no Nats-Msg-Id): every id
# for RECENT_S seconds (a redelivery comes after the submission consumer's 30 s ack wait
# or a retry delay), and never fewer than the last RECENT_MIN ids; at most RECENT_MAX,
# which covers ~100 s at the highest rate measured (~10,000 events/s, docs/bench.md).
RECENT_S = 120.0
RECENT_MIN = 200_000
RECENT_MAX = 1_000_000
_REPLY_PREFIXES = ("_INBOX.", "_R_.")


class AuditSequencer:
    def __init__(
        self,
        nc: NATS,
        log_identity: Identity,
        *,
        interval: float = 1.0,
        clock: Clock = utcnow,
        batch: int = 256,
        metrics: Metrics | None = None,
        linger: float = 0.02,
    ) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.identity = log_identity
        self.interval = interval
        self.clock = clock
        self.batch = batch
        # How long a pass that found only a few events waits for more: each pass
        # costs wake-ups, a round of acknowledgments and a flush whatever its size, so
        # at a few thousand events a second batches of one or two cost the sequencer
        # twice its CPU per event (bench/audit_drain.py). Nobody waits on the append:
        # brokers are done once AUDITIN stored their events.
        self.linger = linger
        self.log = self._new_log()
        self._recent: OrderedDict[str, float] = OrderedDict()  # event id -> when seen
        self._last_signed = -1
        # Inputs refused (undecodable, or not an event: e.g. a pre-chained record) and
        # entries found in AUDIT that the sequencer did not write. Both are counted (here
        # and as metrics), logged, never retried: one bad input must not stop the log.
        self.rejected = 0
        self.foreign = 0
        self.metrics = metrics or Metrics()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._pub = _Appender(nc)
        # Standing pull requests (transport/pull.py): events arrive while the previous
        # batch is appended, and each pass appends whatever has arrived.
        self._inbox: list[Msg] = []
        self._in_hand = 0
        self._arrived = asyncio.Event()
        self._pulls = StandingPulls(nc, s.AUDIT_IN_STREAM, self._on_event, self._room,
                                    lambda _msg: SEQUENCER_CONSUMER,
                                    min_request=max(1, batch // 4))

    def _room(self, _key: str) -> int:
        return 2 * self.batch - len(self._inbox) - self._in_hand

    def _on_event(self, _key: str, msg: Msg) -> None:
        self._inbox.append(msg)
        self._arrived.set()

    def _new_log(self) -> AuditLog:
        # The stream holds the entries; the sequencer keeps only the tree.
        current = self.identity.signing_keys[-1]
        return AuditLog(current.private, self.identity.signing_key_id, keep_entries=False)

    @property
    def size(self) -> int:
        return self.log.size

    async def start(self) -> None:
        await self._pub.start()
        await self._rebuild()
        await self.js.add_consumer(
            s.AUDIT_IN_STREAM,
            ConsumerConfig(durable_name=SEQUENCER_CONSUMER, ack_policy=AckPolicy.EXPLICIT,
                           ack_wait=30, max_ack_pending=50_000),
        )
        await self._pulls.start()
        self._pulls.add(SEQUENCER_CONSUMER, SEQUENCER_CONSUMER)
        self._pulls.top_up(SEQUENCER_CONSUMER)
        await self.nc.subscribe(s.HEAD_REQUEST_SUBJECT, cb=self._on_head_request)
        self._tasks = [
            asyncio.create_task(self._sequence(), name="audit-sequence"),
            asyncio.create_task(self._sign_periodically(), name="audit-heads"),
        ]

    async def stop(self) -> None:
        """Graceful: append what the open pull requests still bring (transport/pull.py),
        then what is in hand, then sign a last head."""
        with contextlib.suppress(Exception):
            await self._pulls.stop()
        self._stop.set()
        self._arrived.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout=5)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # already logged where it happened; stop regardless
                log.warning("audit_task_failed", task=task.get_name(), error=type(exc).__name__)
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.publish_head()
        # The last batch's acknowledgments are queued, not yet read by the server: a
        # round trip, so none is lost with the connection and nothing is redelivered.
        with contextlib.suppress(Exception):
            await self.nc.flush(timeout=2)
        self._pub.close()

    async def _rebuild(self) -> None:
        """Read AUDIT back; the stream, not memory, is the source of truth."""
        self.log = self._new_log()
        self._recent.clear()
        self.foreign = 0  # recounted from the stream
        self.metrics.audit_foreign.set(0)
        info = await self.js.stream_info(s.AUDIT_STREAM)
        last = info.state.last_seq
        if last == 0:
            return
        sub = await self.js.subscribe(s.AUDIT_SUBJECT, ordered_consumer=True)
        try:
            while self.log.size < last:
                msg = await sub.next_msg(timeout=10)
                self._adopt(msg.data)
        finally:
            await sub.unsubscribe()
        log.info("audit_rebuilt", size=self.log.size)

    def _adopt(self, entry: bytes) -> None:
        stored = self.log.adopt(entry)
        if stored.fault == "foreign":
            # The entry stays a leaf (the tree must match the stream for heads to
            # verify) and auditors see it flagged. The chain goes on from it, so the
            # sequencer never retries forever.
            self.foreign += 1
            self.metrics.audit_foreign.set(self.foreign)
            log.error("audit_foreign_entry", index=stored.index)
            return
        if stored.fault == "chain_break":
            # Ours, pipelined behind an append that a foreign write made fail: its link
            # names the refused entry. Auditors see the break; its event is in the log,
            # so it is remembered and not appended twice.
            log.error("audit_chain_break", index=stored.index)
        if stored.record is not None:
            self._remember(stored.record.event.details.get(EVENT_ID, ""))

    def _remember(self, event_id: str) -> None:
        if event_id:
            now = time.monotonic()
            self._recent[event_id] = now
            recent = self._recent
            while len(recent) > RECENT_MAX or (
                    len(recent) > RECENT_MIN and now - next(iter(recent.values())) > RECENT_S):
                recent.popitem(last=False)

    async def _sequence(self) -> None:
        # Once stopping, the events in hand are still appended: left unacknowledged,
        # each would wait out the consumer's ack_wait before anyone sequenced it.
        loop = asyncio.get_running_loop()
        while not self._stop.is_set() or self._inbox:
            if not self._inbox:
                self._arrived.clear()
                wake = loop.call_later(0.5, self._arrived.set)  # not wait_for: no task
                await self._arrived.wait()
                wake.cancel()
                self._pulls.tick()  # requests a restarted server forgot
                continue
            if len(self._inbox) < self.batch // 8 and self.linger > 0:
                await asyncio.sleep(self.linger)
            msgs, self._inbox = self._inbox[:self.batch], self._inbox[self.batch:]
            self._in_hand = len(msgs)
            try:
                await self._append_batch(msgs)
            except Exception as exc:
                # Another writer, a lost publish or a server restart: trust the stream,
                # not our state, and keep trying until the stream answers again.
                log.error("audit_append_failed", error=type(exc).__name__)
                if self._stop.is_set():  # no retry while stopping: hand them all back
                    msgs, self._inbox = msgs + self._inbox, []
                for m in msgs:
                    with contextlib.suppress(Exception):
                        await m.nak(delay=0.5)
                await self._rebuild_until_ok()
            finally:
                self._in_hand = 0
                self._pulls.top_up(SEQUENCER_CONSUMER)

    async def _rebuild_until_ok(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                await self._rebuild()
                return
            except Exception as exc:
                log.warning("audit_rebuild_failed", error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _append_batch(self, msgs: list[Msg]) -> None:
        events: list[AuditEvent] = []
        event_ids: list[str] = []
        keep: list[Msg] = []
        batch_ids: set[str] = set()
        for m in msgs:
            try:
                decoded = decode_events(m.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                self.rejected += 1
                self.metrics.audit_rejected.inc()
                log.error("audit_event_rejected", rejected=self.rejected)
                await m.term()
                continue
            keep.append(m)
            for event in decoded:
                event_id = event.details.get(EVENT_ID, "")
                if event_id and (event_id in self._recent or event_id in batch_ids):
                    continue  # a broker retried after a crash: already in the log
                batch_ids.add(event_id)
                events.append(event)
                event_ids.append(event_id)
        # One batch per pull: sealed (encoded and hashed once) by the log, appended,
        # committed to the log once JetStream stored every record: never decoded again.
        sealed = self.log.seal_batch(events)
        await self._pub.append(sealed)
        self.log.commit(sealed)
        for event_id in event_ids:
            self._remember(event_id)
        await self._pub.ack([m.reply for m in keep])

    def head(self) -> SignedTreeHead:
        return self.log.head(self.clock())

    async def publish_head(self) -> SignedTreeHead:
        head = self.head()
        await self.js.publish(s.AUDIT_HEAD_SUBJECT, json.dumps(head.to_json()).encode())
        self._last_signed = head.size
        return head

    async def _sign_periodically(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval)
            if self.log.size != self._last_signed:
                try:
                    await self.publish_head()
                except Exception as exc:
                    log.warning("audit_head_failed", error=type(exc).__name__)

    async def _on_head_request(self, msg: Msg) -> None:
        # The sequencer may write the log, so it answers only to a reply inbox: a
        # request naming a log subject as its reply must not make it write there.
        # Requests imported from other accounts carry the server's `_R_.` mapping.
        if not msg.reply.startswith(_REPLY_PREFIXES):
            self.rejected += 1
            self.metrics.audit_rejected.inc()
            log.error("audit_head_request_refused", rejected=self.rejected)
            return
        head = await self.publish_head()
        await msg.respond(json.dumps(head.to_json()).encode())


class _Appender:
    """Appends sealed records to AUDIT and acknowledges the pulled inputs, lean: the
    sequencer's publishing was most of its CPU (bench/audit_drain.py --cprofile).

    Every record of a batch carries the sequence it expects to follow and asks for an
    answer on the batch's one reply subject: messages on one connection keep their
    order, so the server refuses any interleaving, and the batch counts as stored only
    once every record was acknowledged (a refusal or no answer in `timeout` raises).
    Only the last record's answer would not do: a record refused because another
    writer took its place leaves the next ones in place and the count right.

    The protocol lines are written directly (what nats-py's `publish` would write, less
    its per-call subject and header validation, which these fixed subjects and headers
    do not need)."""

    def __init__(self, nc: NATS, timeout: float = 5.0) -> None:
        self.nc = nc
        self.timeout = timeout
        self.prefix = nc.new_inbox()
        self._subject = s.AUDIT_SUBJECT.encode()
        self._n = 0
        self._token = ""
        self._want = 0
        self._got = 0
        self._done: asyncio.Future[None] | None = None

    async def start(self) -> None:
        await self.nc.subscribe(self.prefix + ".*", future=Inline(self._on_ack))

    def _on_ack(self, msg: Msg) -> None:
        done = self._done
        if done is None or done.done() or msg.subject[len(self.prefix) + 1:] != self._token:
            return  # an answer to a batch that already failed
        if is_refusal(msg):
            done.set_exception(refusal(msg.data))
            return
        self._got += 1
        if self._got == self._want:
            done.set_result(None)

    async def append(self, sealed: list[Sealed]) -> None:
        if not sealed:
            return
        nc = self.nc
        if not nc.is_connected:
            raise PublishNotAcknowledged("not connected")
        self._n += 1
        self._token = f"{self._n:x}"
        self._want, self._got = len(sealed), 0
        loop = asyncio.get_running_loop()
        done = self._done = loop.create_future()
        head = b"HPUB " + self._subject + b" " + f"{self.prefix}.{self._token}".encode() + b" "
        for r in sealed:
            hdr = b"NATS/1.0\r\nNats-Expected-Last-Sequence: %d\r\n\r\n" % r.index
            await nc._send_command(b"%s%d %d\r\n%s%s\r\n" % (
                head, len(hdr), len(hdr) + len(r.entry), hdr, r.entry))
        await nc._flush_pending()
        timer = loop.call_later(self.timeout, self._expire, done)
        try:
            await done
        finally:
            timer.cancel()
            self._done = None

    def _expire(self, done: asyncio.Future[None]) -> None:
        if not done.done():
            done.set_exception(PublishNotAcknowledged(
                f"{self._want - self._got} of {self._want} appends not acknowledged "
                f"within {self.timeout:g} s"))

    async def ack(self, replies: list[str]) -> None:
        """Acknowledge pulled messages (an empty message to each one's reply subject, as
        `Msg.ack` sends)."""
        if not replies:
            return
        for reply in replies:
            await self.nc._send_command(b"PUB %s 0\r\n\r\n" % reply.encode())
        await self.nc._flush_pending()

    def close(self) -> None:
        done = self._done
        if done is not None and not done.done():
            done.set_exception(PublishNotAcknowledged("the sequencer is stopping"))


_events_decoder = msgspec.msgpack.Decoder(AuditEvent | list[AuditEvent])


def encode_events(events: list[AuditEvent]) -> bytes:
    """All the events of one submission in one message: one acknowledged publish
    instead of one per recipient (the fan-out's publishes halve)."""
    return msgspec.msgpack.encode(events)


def decode_events(data: bytes) -> list[AuditEvent]:
    """A single event (operators' tools) or a submission's list of events."""
    decoded = _events_decoder.decode(data)
    return decoded if isinstance(decoded, list) else [decoded]


def event_with_id(event: AuditEvent, event_id: str) -> AuditEvent:
    """The broker's idempotency key travels in `details` so that a retried event is
    recognised by the sequencer even after it restarts."""
    return msgspec.structs.replace(event, details={**event.details, EVENT_ID: event_id})
