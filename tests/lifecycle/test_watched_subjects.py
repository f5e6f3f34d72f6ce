"""The acknowledgment watcher receives only what it watches (issue 19), against a real
nats-server and broker: a routine delivery goes on the recipient's unwatched delivery
subject and never reaches the watcher's consumer (the server hands it nothing but the
watched subjects), while the recipient's inbox reads both; urgent originals and
acknowledgments go on the watched subject and are watched as before."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from broker.hosting.stack import DevStack
from broker.routing.acks import WATCH_HEADER, AckWatcher
from clients.sdk.holder import Holder
from schemas import Category, Level, Urgency, UrgencyReason, examples
from transport import subjects as s

HolderFactory = Callable[[str], Awaitable[Holder]]
URGENT: dict[str, Any] = {"urgency": Urgency.URGENT,
                          "urgency_reasons": [UrgencyReason.SUSPECT_ESCAPING]}
TH, KH = "TH-AHTD", "KH-AHTJP"


class RecordingWatcher(AckWatcher):
    """Records (subject, stream sequence) of every delivery that reaches the watcher."""

    def __init__(self, nc: NATS, **options: Any) -> None:
        super().__init__(nc, **options)
        self.seen: list[tuple[str, int]] = []

    async def _on_msg(self, msg: Msg) -> None:
        self.seen.append((msg.subject, msg.metadata.sequence.stream))
        await super()._on_msg(msg)


async def _until(pred: Callable[[], bool], what: str, timeout: float = 8.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        assert loop.time() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_an_unwatched_delivery_never_reaches_the_watchers_consumer(
        stack: DevStack, holder: HolderFactory, sync_until: Any) -> None:
    th, kh = await holder(TH), await holder(KH)
    nc = await stack.broker_connection("ack-watch")
    js = nc.jetstream()
    watcher = RecordingWatcher(nc, timeout=timedelta(minutes=15))
    await watcher.start(loop=False)
    try:
        routine = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                                level=Level.RESTRICTED, to=[KH])
        urgent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                               level=Level.RESTRICTED, to=[KH], **URGENT)
        # The recipient reads both of its subjects.
        await sync_until(kh, lambda r: {routine.id, urgent.id} <= {x.id for x in r.new})
        await _until(lambda: (urgent.id, KH) in watcher.pending, "the urgent message")
        await kh.open(urgent.id)  # the acknowledgment, delivered to TH: watched too
        await _until(lambda: (urgent.id, KH) not in watcher.pending, "the acknowledgment")

        plain = await js.get_msg(s.DELIVER_STREAM, subject=s.deliver_unwatched(KH))
        assert (plain.headers or {}).get(WATCH_HEADER) == "-"
        watched = await js.get_msg(s.DELIVER_STREAM, subject=s.deliver(KH))
        assert (watched.headers or {})[WATCH_HEADER].startswith(f"urgent {urgent.id} ")
        ack = await js.get_msg(s.DELIVER_STREAM, subject=s.deliver(TH))
        assert (ack.headers or {})[WATCH_HEADER] == f"ack {urgent.id} {KH}"

        # In the watcher's process: the urgent delivery and the acknowledgment, never
        # the routine delivery.
        assert (s.deliver(KH), watched.seq) in watcher.seen
        assert (s.deliver(TH), ack.seq) in watcher.seen
        assert plain.seq not in {seq for _, seq in watcher.seen}
        assert all(subject.count(".") == 2 for subject, _ in watcher.seen), watcher.seen

        # On the server: every ordered consumer on DELIVER (this watcher's and the
        # stack's own) filters the watched subjects, and what it delivered is exactly
        # the deliveries stored on them, while the unwatched ones are stored beside.
        counts = (await js.stream_info(s.DELIVER_STREAM, subjects_filter=">")).state.subjects
        assert counts is not None
        on_watched = sum(n for subj, n in counts.items()
                         if subj.startswith("orcon.deliver.") and subj.count(".") == 2)
        on_unwatched = sum(n for subj, n in counts.items()
                           if subj.startswith("orcon.deliver.") and subj.count(".") == 3)
        assert on_watched >= 2 and on_unwatched >= 1

        ephemeral: list[Any] = []

        async def caught_up() -> bool:
            nonlocal ephemeral
            ephemeral = [c for c in await js.consumers_info(s.DELIVER_STREAM)
                         if not c.config.durable_name]
            return all(c.num_pending == 0 and c.delivered.consumer_seq == on_watched
                       for c in ephemeral)

        for _ in range(100):
            if await caught_up():
                break
            await asyncio.sleep(0.05)
        assert len(ephemeral) >= 2
        for c in ephemeral:
            assert c.config.filter_subject == s.DELIVER_WATCHED, c.config
            assert c.config.headers_only
            assert (c.num_pending, c.delivered.consumer_seq) == (0, on_watched), (
                c.name, c.delivered, counts)
        assert len(watcher.seen) == on_watched
    finally:
        await watcher.stop()
        await nc.close()
