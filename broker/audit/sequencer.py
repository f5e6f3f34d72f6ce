"""The audit log on JetStream: brokers submit events, one sequencer appends them.

Brokers (any number) publish `AuditEvent`s to the AUDITIN work queue. The sequencer,
the single writer of the AUDIT stream, wraps each in a `LogRecord` (its index and the
previous leaf hash, see events.py), appends it with `Nats-Expected-Last-Sequence`, so a
second writer could never interleave unnoticed, keeps the Merkle tree, and signs tree
heads into AUDITHEAD periodically and on request.

The AUDIT and AUDITHEAD streams deny delete and purge; the sequencer is stateless
across restarts: it rebuilds the tree by reading AUDIT back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict

import msgspec
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

from broker.audit.events import (
    GENESIS_PREV,
    AuditEvent,
    LogRecord,
    decode_record,
    encode_record,
)
from broker.audit.heads import SignedTreeHead, head_signing_bytes
from broker.audit.merkle import MerkleTree, leaf_hash
from broker.metrics import Metrics
from keys.identity import Identity
from schemas.clock import Clock, utcnow
from transport import subjects as s
from transport.jspub import AckPublisher
from transport.pull import StandingPulls

log = structlog.get_logger("orcon.audit")

SEQUENCER_CONSUMER = "sequencer"
EVENT_ID = "event_id"  # the details key carrying the broker's idempotency key
_RECENT_IDS = 200_000
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
    ) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.identity = log_identity
        self.interval = interval
        self.clock = clock
        self.batch = batch
        self.tree = MerkleTree()
        self._prev = GENESIS_PREV
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._last_signed = -1
        # Inputs refused (undecodable, or not an event: e.g. a pre-chained record) and
        # entries found in AUDIT that the sequencer did not write. Both are counted (here
        # and as metrics), logged, never retried: one bad input must not stop the log.
        self.rejected = 0
        self.foreign = 0
        self.metrics = metrics or Metrics()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._pub = AckPublisher(nc)
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

    @property
    def size(self) -> int:
        return len(self.tree)

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
        self._pub.close()

    async def _rebuild(self) -> None:
        """Read AUDIT back; the stream, not memory, is the source of truth."""
        self.tree = MerkleTree()
        self._prev = GENESIS_PREV
        self._recent.clear()
        self.foreign = 0  # recounted from the stream
        self.metrics.audit_foreign.set(0)
        info = await self.js.stream_info(s.AUDIT_STREAM)
        last = info.state.last_seq
        if last == 0:
            return
        sub = await self.js.subscribe(s.AUDIT_SUBJECT, ordered_consumer=True)
        try:
            while len(self.tree) < last:
                msg = await sub.next_msg(timeout=10)
                self._remember(msg.data)
        finally:
            await sub.unsubscribe()
        log.info("audit_rebuilt", size=len(self.tree))

    def _remember(self, entry: bytes) -> None:
        index, prev = len(self.tree), self._prev
        self.tree.append(entry)
        self._prev = leaf_hash(entry)
        try:
            record = decode_record(entry)
        except (msgspec.DecodeError, msgspec.ValidationError):
            record = None
        if record is None or record.index != index:
            # The stream is append-only: the entry stays a leaf (the tree must match the
            # stream for heads to verify) and auditors see it flagged. The chain goes on
            # from it, so the sequencer never retries forever.
            self.foreign += 1
            self.metrics.audit_foreign.set(self.foreign)
            log.error("audit_foreign_entry", index=index)
            return
        if record.prev != prev:
            # Ours, pipelined behind an append that a foreign write made fail: its link
            # names the refused entry. Auditors see the break; its event is in the log,
            # so it is remembered and not appended twice.
            log.error("audit_chain_break", index=index)
        event_id = record.event.details.get(EVENT_ID)
        if event_id:
            self._recent[event_id] = None
            if len(self._recent) > _RECENT_IDS:
                self._recent.popitem(last=False)

    async def _sequence(self) -> None:
        # Once stopping, the events in hand are still appended: left unacknowledged,
        # each would wait out the consumer's ack_wait before anyone sequenced it.
        while not self._stop.is_set() or self._inbox:
            if not self._inbox:
                self._arrived.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), timeout=0.5)
                self._pulls.tick()  # requests a restarted server forgot
                continue
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
        entries: list[bytes] = []
        keep: list[Msg] = []
        prev, index = self._prev, len(self.tree)
        batch_ids: set[str] = set()
        entry_ids: list[str] = []
        leaves: list[bytes] = []
        for m in msgs:
            try:
                events = decode_events(m.data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                self.rejected += 1
                self.metrics.audit_rejected.inc()
                log.error("audit_event_rejected", rejected=self.rejected)
                await m.term()
                continue
            keep.append(m)
            for event in events:
                event_id = event.details.get(EVENT_ID, "")
                if event_id and (event_id in self._recent or event_id in batch_ids):
                    continue  # a broker retried after a crash: already in the log
                batch_ids.add(event_id)
                entry = encode_record(LogRecord(index=index, prev=prev, event=event))
                entries.append(entry)
                entry_ids.append(event_id)
                prev, index = leaf_hash(entry), index + 1
                leaves.append(prev)
        # Pipelined: messages on one connection keep their order, and each carries the
        # sequence it expects to follow, so the server rejects any interleaving. One
        # reply subscription and one deadline for the batch (transport/jspub.py), not a
        # request, a timer and a JSON parse per entry.
        start = len(self.tree)
        pub = self._pub
        acks = [await pub.publish(s.AUDIT_SUBJECT, entry, None,
                                  headers={"Nats-Expected-Last-Sequence": str(start + i)})
                for i, entry in enumerate(entries)]
        await pub.wait(acks)
        for leaf, event_id in zip(leaves, entry_ids, strict=True):
            self._remember_own(leaf, event_id)
        for m in keep:
            await m.ack()

    def _remember_own(self, leaf: bytes, event_id: str) -> None:
        """An entry this sequencer just encoded and stored (`leaf`: its leaf hash): no
        need to decode or hash it again (its index and link are right by construction)."""
        self.tree.append_leaf_hash(leaf)
        self._prev = leaf
        if event_id:
            self._recent[event_id] = None
            if len(self._recent) > _RECENT_IDS:
                self._recent.popitem(last=False)

    def head(self) -> SignedTreeHead:
        size, root, now = len(self.tree), self.tree.root(), self.clock()
        key_id = self.identity.signing_key_id
        sig = self.identity.sign(head_signing_bytes(size, root, now, key_id))
        return SignedTreeHead(size, root, now, key_id, sig)

    async def publish_head(self) -> SignedTreeHead:
        head = self.head()
        await self.js.publish(s.AUDIT_HEAD_SUBJECT, json.dumps(head.to_json()).encode())
        self._last_signed = head.size
        return head

    async def _sign_periodically(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval)
            if len(self.tree) != self._last_signed:
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
