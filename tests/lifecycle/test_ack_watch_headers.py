"""The acknowledgment watcher reads delivery headers only (issue 19), against a real
nats-server and broker: its consumer on DELIVER is headers-only and no payload reaches
it, yet an unacknowledged urgent message is re-notified with the delivery's exact bytes;
a restarted watcher does not send the reminders it already sent; a delivery without the
broker's label (published before brokers set it) is read whole, never forgotten; and an
agency cannot label its own submission to escape the watch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from broker.hosting.stack import DevStack
from broker.routing.acks import AckWatcher
from clients.sdk.holder import Holder
from keys.envelope import seal
from schemas import Category, Level, Urgency, UrgencyReason, encode, encode_envelope, examples
from tests.support.attacks import connect
from transport import subjects as s

HolderFactory = Callable[[str], Awaitable[Holder]]
URGENT: dict[str, Any] = {"urgency": Urgency.URGENT,
                          "urgency_reasons": [UrgencyReason.SUSPECT_ESCAPING]}
KH, BLO = "KH-AHTJP", "TH-BLO-CHIANGSAEN"
WATCH_HEADER = "Orcon-Watch"  # the broker's label on each delivery (broker/routing/acks.py)


class RecordingWatcher(AckWatcher):
    """Records the payload size of every delivery that reaches the watcher."""

    def __init__(self, nc: NATS, **options: Any) -> None:
        super().__init__(nc, **options)
        self.payload_sizes: list[int] = []

    async def _on_msg(self, msg: Msg) -> None:
        self.payload_sizes.append(len(msg.data))
        await super()._on_msg(msg)


async def _until(pred: Callable[[], bool], what: str, timeout: float = 8.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _last_delivery(nc: NATS, agency: str) -> tuple[int, bytes, dict[str, str]]:
    raw = await nc.jetstream().get_msg(s.DELIVER_STREAM, subject=s.deliver(agency))
    return raw.seq or 0, raw.data or b"", dict(raw.headers or {})


async def test_headers_only_watcher_renotifies_with_the_delivery_bytes(
        stack: DevStack, holder: HolderFactory, sync_until: Any) -> None:
    th, kh = await holder("TH-AHTD"), await holder(KH)
    now = [datetime.now(UTC)]
    nc = await stack.broker_connection("ack-watch")
    js = nc.jetstream()
    watcher = RecordingWatcher(nc, timeout=timedelta(minutes=15), clock=lambda: now[0])
    await watcher.start(loop=False)
    again: AckWatcher | None = None
    try:
        routine = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                                level=Level.RESTRICTED, to=[KH])
        urgent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                               level=Level.RESTRICTED, to=[KH], **URGENT)
        await sync_until(kh, lambda r: {routine.id, urgent.id} <= {x.id for x in r.new})
        await _until(lambda: (urgent.id, KH) in watcher.pending, "the urgent message")
        # Only the urgent one reaches the watcher: the routine one is on the agency's
        # unwatched delivery subject (tests/lifecycle/test_watched_subjects.py).
        await _until(lambda: len(watcher.payload_sizes) >= 1, "the urgent delivery")
        # Every ordered consumer on DELIVER (this watcher's and the stack's own) is
        # headers-only, and nothing but headers reached this one.
        ephemeral = [c for c in await js.consumers_info(s.DELIVER_STREAM)
                     if not c.config.durable_name]
        assert len(ephemeral) >= 2
        assert all(c.config.headers_only for c in ephemeral), [
            (c.name, c.config.headers_only) for c in ephemeral]
        assert set(watcher.payload_sizes) == {0}, watcher.payload_sizes
        assert (routine.id, KH) not in watcher.pending
        assert watcher.fetched_unlabelled == 0
        # The broker's label says what the watcher needs.
        seq, original, headers = await _last_delivery(nc, KH)
        assert headers[WATCH_HEADER] == (
            f"urgent {urgent.id} TH-AHTD {urgent.created_at.isoformat()}")

        now[0] += timedelta(minutes=16)
        assert await watcher.tick() == [(urgent.id, KH)]
        got = await sync_until(kh, lambda r: urgent.id in r.reminders)
        assert got.new == [] and kh.get(urgent.id).reminders == 1
        reminder_seq, reminder, headers = await _last_delivery(nc, KH)
        assert reminder_seq > seq and reminder == original  # the delivery, byte for byte
        assert headers[WATCH_HEADER] == f"reminder {urgent.id} 1"
        await _until(lambda: len(watcher.payload_sizes) >= 2, "the reminder")
        assert watcher.payload_sizes == [0, 0]

        # A restarted watcher rebuilds from the stream: the reminder already sent is not
        # sent again; the next one is, when it is due.
        await watcher.stop()
        again = AckWatcher(nc, timeout=timedelta(minutes=15), clock=lambda: now[0])
        await again.start(loop=False)
        await _until(lambda: (urgent.id, KH) in again.pending
                     and again.pending[(urgent.id, KH)].reminders == 1, "the rebuild")
        assert await again.tick() == []
        now[0] += timedelta(minutes=15)
        assert await again.tick() == [(urgent.id, KH)]
        await sync_until(kh, lambda r: urgent.id in r.reminders)
        assert kh.get(urgent.id).reminders == 2

        await kh.open(urgent.id)  # acknowledges
        await _until(lambda: (urgent.id, KH) not in again.pending, "the acknowledgment")
        _, _, headers = await _last_delivery(nc, "TH-AHTD")
        assert headers[WATCH_HEADER] == f"ack {urgent.id} {KH}"
        now[0] += timedelta(minutes=30)
        assert await again.tick() == []
    finally:
        await watcher.stop()
        if again is not None:
            await again.stop()
        await nc.close()


async def test_unlabelled_deliveries_are_read_whole_never_forgotten(
        stack: DevStack, holder: HolderFactory, sync_until: Any) -> None:
    """Deliveries published before brokers labelled them (or with a label the watcher
    cannot read) are fetched by sequence and decoded: fail closed for urgent messages."""
    th, kh = await holder("TH-AHTD"), await holder(KH)
    urgent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                           level=Level.RESTRICTED, to=[KH], **URGENT)
    await sync_until(kh, lambda r: any(x.id == urgent.id for x in r.new))
    nc = await stack.broker_connection("old-broker")
    js = nc.jetstream()
    watcher: AckWatcher | None = None
    try:
        _, data, _ = await _last_delivery(nc, KH)
        # As a broker without labels published it (a Nats-Msg-Id only), and once with a
        # label nobody can read; the watcher keys by (message id, delivery subject).
        await js.publish(s.deliver(BLO), data, headers={"Nats-Msg-Id": f"{urgent.id}:old"})
        await js.publish(s.deliver("VN-BGC"), data,
                         headers={"Nats-Msg-Id": f"{urgent.id}:odd", WATCH_HEADER: "urgent ?"})
        now = [urgent.created_at]
        watcher = AckWatcher(nc, timeout=timedelta(minutes=15), clock=lambda: now[0])
        await watcher.start(loop=False)
        keys = {(urgent.id, KH), (urgent.id, BLO), (urgent.id, "VN-BGC")}
        await _until(lambda: keys <= set(watcher.pending), "the rebuild")
        assert watcher.fetched_unlabelled == 2
        now[0] += timedelta(minutes=16)
        assert set(await watcher.tick()) == keys
        _, reminder, headers = await _last_delivery(nc, BLO)
        assert reminder == data and headers[WATCH_HEADER] == f"reminder {urgent.id} 1"
    finally:
        if watcher is not None:
            await watcher.stop()
        await nc.close()


async def test_an_agency_cannot_label_its_own_submission(
        stack: DevStack, holder: HolderFactory, sync_until: Any) -> None:
    """The label is the broker's: a sender that puts `Orcon-Watch: -` on its urgent
    submission is watched all the same (the broker never copies a submission's headers)."""
    kh = await holder(KH)
    client = await connect(stack, "TH-AHTD")
    nc = await stack.broker_connection("ack-watch")
    watcher = AckWatcher(nc, timeout=timedelta(minutes=15))
    await watcher.start(loop=False)
    try:
        body = examples.mekong_route_report()
        header = client.draft(body, category=Category.ROUTES, level=Level.RESTRICTED,
                              to=[KH], **URGENT)
        keys = client.directory.recipients_for(KH, client.clock())
        data = encode_envelope(seal(encode(header), encode(body), keys, client.identity))
        await client.js.publish(s.submit("TH-AHTD"), data, headers={
            "Nats-Msg-Id": header.id, WATCH_HEADER: "-"})
        await sync_until(kh, lambda r: any(x.id == header.id for x in r.new))
        await _until(lambda: (header.id, KH) in watcher.pending, "the urgent message")
        _, _, headers = await _last_delivery(nc, KH)
        assert headers[WATCH_HEADER].startswith(f"urgent {header.id} ")
    finally:
        await watcher.stop()
        await nc.close()
        await client.close()


async def test_an_unlabelled_delivery_whose_read_fails_is_read_again(
        stack: DevStack, holder: HolderFactory, sync_until: Any) -> None:
    """A failed fetch of an unlabelled delivery is not skipped: the next tick reads it."""
    th, kh = await holder("TH-AHTD"), await holder(KH)
    urgent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                           level=Level.RESTRICTED, to=[KH], **URGENT)
    await sync_until(kh, lambda r: any(x.id == urgent.id for x in r.new))
    nc = await stack.broker_connection("old-broker")
    watcher: AckWatcher | None = None
    try:
        _, data, _ = await _last_delivery(nc, KH)
        await nc.jetstream().publish(s.deliver(BLO), data,
                                     headers={"Nats-Msg-Id": f"{urgent.id}:old"})
        watcher = AckWatcher(nc, timeout=timedelta(minutes=15))
        real_get, failures = watcher.js.get_msg, [1]

        async def get_once_failing(stream: str, seq: int) -> Any:
            if failures[0]:  # the server did not answer in time, once
                failures[0] -= 1
                raise TimeoutError
            return await real_get(stream, seq)

        watcher.js.get_msg = get_once_failing  # type: ignore[method-assign]
        await watcher.start(loop=False)
        await _until(lambda: (urgent.id, KH) in watcher.pending
                     and watcher.fetched_unlabelled == 1, "the rebuild")
        assert (urgent.id, BLO) not in watcher.pending and failures == [0]
        assert await watcher.tick() == []  # reads it; not due yet
        assert (urgent.id, BLO) in watcher.pending
    finally:
        if watcher is not None:
            await watcher.stop()
        await nc.close()
