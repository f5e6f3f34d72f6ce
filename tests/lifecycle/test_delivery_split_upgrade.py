"""A DELIVER stream made by the previous version (one delivery subject per agency, inbox
consumers filtering it alone) is migrated by the sequencer at start, with the
sequencer's own credential on a real nats-server: every inbox consumer reads both
delivery subjects from where it stood (what it had not delivered is still delivered,
in order; what was acknowledged is not redelivered) before the stream accepts the
unwatched subject, and the acknowledgment watcher still finds an urgent message published before
the upgrade."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig

from broker.hosting.node import ensure_federation_streams
from broker.hosting.stack import DevStack
from broker.routing import streams
from broker.routing.acks import WATCH_HEADER, AckWatcher
from clients.sdk.holder import Holder
from schemas import Category, Level, Urgency, UrgencyReason, examples
from transport import subjects as s

HolderFactory = Callable[[str], Awaitable[Holder]]
URGENT: dict[str, Any] = {"urgency": Urgency.URGENT,
                          "urgency_reasons": [UrgencyReason.SUSPECT_ESCAPING]}
TH, KH = "TH-AHTD", "KH-AHTJP"
OLD_URGENT = "01JOLDURGENTBEFOREUPGRADE0"


def _previous_inbox(agency: str) -> ConsumerConfig:
    """The inbox consumer as the previous version made it."""
    return ConsumerConfig(durable_name=s.inbox_consumer(agency), filter_subject=s.deliver(agency),
                          ack_policy=AckPolicy.EXPLICIT, ack_wait=30.0)


async def test_the_sequencer_migrates_a_deliver_stream_of_the_previous_version(
        stack: DevStack, holder: HolderFactory, sync_until: Any) -> None:
    assert stack.federation is not None
    agencies = [a.id for a in stack.federation.agencies]
    seq_nc = await stack.sequencer_connection("upgrade")
    old_broker = await stack.broker_connection("old-broker")
    sjs, bjs = seq_nc.jetstream(), old_broker.jetstream()
    watcher: AckWatcher | None = None
    try:
        # The previous version's layout, before anything was delivered.
        for agency in agencies:
            await sjs.add_consumer(s.DELIVER_STREAM, _previous_inbox(agency))
        [deliver] = [c for c in streams.stream_configs() if c.name == s.DELIVER_STREAM]
        await sjs.update_stream(deliver.evolve(subjects=["orcon.deliver.*", "orcon.report.*"]))
        # What a broker of the previous version published: every delivery on the one
        # subject, one of them an urgent message nobody acknowledged.
        created = datetime.now(UTC).isoformat()
        await bjs.publish(s.deliver(KH), b"old-1", headers={
            "Nats-Msg-Id": "old-1", WATCH_HEADER: f"urgent {OLD_URGENT} {TH} {created}"})
        for n in (2, 3):
            await bjs.publish(s.deliver(KH), f"old-{n}".encode(),
                              headers={"Nats-Msg-Id": f"old-{n}", WATCH_HEADER: "-"})
        inbox = await bjs.pull_subscribe_bind(s.inbox_consumer(KH), s.DELIVER_STREAM)
        [first] = await inbox.fetch(1, timeout=2)
        assert first.data == b"old-1"
        await first.ack_sync()

        # The sequencer starts (its start-up path, its credential). Streams come first:
        # once DELIVER accepts the unwatched subject, every inbox consumer reads it
        # already, so no delivery on it is ever stored behind a consumer's position
        # (a consumer does not go back for what its filter did not match).
        await streams.ensure_streams(sjs)
        await bjs.publish(s.deliver_unwatched(KH), b"mid-u", headers={"Nats-Msg-Id": "mid-u"})
        await bjs.publish(s.deliver(KH), b"mid-w", headers={"Nats-Msg-Id": "mid-w"})
        early = await inbox.fetch(4, timeout=2)
        await ensure_federation_streams(seq_nc, agencies, ready_timeout=10)
        assert [m.data for m in early] == [b"old-2", b"old-3", b"mid-u", b"mid-w"]
        for m in early:
            await m.ack_sync()

        info = await sjs.stream_info(s.DELIVER_STREAM)
        assert s.DELIVER_UNWATCHED in (info.config.subjects or [])
        for agency in agencies:
            c = await sjs.consumer_info(s.DELIVER_STREAM, s.inbox_consumer(agency))
            assert c.config.filter_subject is None
            assert c.config.filter_subjects == [s.deliver(agency), s.deliver_unwatched(agency)]
        kh_inbox = await sjs.consumer_info(s.DELIVER_STREAM, s.inbox_consumer(KH))
        assert kh_inbox.num_pending == 0 and kh_inbox.num_ack_pending == 0
        # Once migrated, nothing more to do: a second start changes nothing.
        assert await streams.split_inbox_consumers(sjs) == []

        # Brokers of this version deliver on both subjects, the agency reads both.
        th, kh = await holder(TH), await holder(KH)
        routine = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                                level=Level.RESTRICTED, to=[KH])
        urgent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                               level=Level.RESTRICTED, to=[KH], **URGENT)
        await sync_until(kh, lambda r: {routine.id, urgent.id} <= {x.id for x in r.new})
        stored = await bjs.get_msg(s.DELIVER_STREAM, subject=s.deliver_unwatched(KH))
        assert stored.headers is not None and stored.headers[WATCH_HEADER] == "-"

        # A watcher started after the upgrade still watches the urgent message published
        # before it, and the new one.
        now = [datetime.now(UTC)]
        watcher = AckWatcher(old_broker, timeout=timedelta(minutes=15), clock=lambda: now[0])
        await watcher.start(loop=False)
        keys = {(OLD_URGENT, KH), (urgent.id, KH)}
        for _ in range(160):
            if keys <= set(watcher.pending):
                break
            await asyncio.sleep(0.05)
        assert keys <= set(watcher.pending), watcher.pending
        assert watcher.pending[(OLD_URGENT, KH)].seq == 1
    finally:
        if watcher is not None:
            await watcher.stop()
        await seq_nc.close()
        await old_broker.close()
