"""The broker handles submissions in passes (broker/routing/service.py): a store
refusing one submission's results leaves the others of its pass routed. Their audit
events travel as a group commit (`AuditBatches`): the events of every submission
handled in one turn of the event loop in one AUDITIN message, each submission told
once that message is stored, and a submission's events never split. Against the real
stack (nats-server, sequencer, broker)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from nats.aio.client import Client as NATS

import schemas
from broker.audit.events import AuditEvent
from broker.audit.sequencer import EVENT_ID, encode_events, event_with_id
from broker.hosting.stack import DevStack
from broker.routing.service import AuditBatches
from broker.routing.streams import stream_configs
from schemas.events import EventType
from tests.support.attacks import connect, signed
from transport import subjects as s
from transport.jspub import AckPublisher, PublishNotAcknowledged

Audit = Callable[..., Awaitable[list[AuditEvent]]]


def _submission(tag: str, n: int) -> list[AuditEvent]:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return [event_with_id(AuditEvent(type=EventType.SUBMITTED, at=at, broker="test",
                                     actor="TH-AHTD", details={"pad": "x" * 200}),
                          f"{tag}:{i}") for i in range(n)]


def _ids(events: list[AuditEvent], prefix: str) -> list[str]:
    return [e.details[EVENT_ID] for e in events
            if e.details.get(EVENT_ID, "").startswith(prefix)]


async def _stored(stack: DevStack) -> int:
    nc = await stack.broker_connection("test-auditin")
    try:
        return (await nc.jetstream().stream_info(s.AUDIT_IN_STREAM)).state.last_seq
    finally:
        await nc.close()


async def test_submissions_handled_together_share_one_message_and_each_event_is_logged_once(
        stack: DevStack, audit: Audit) -> None:
    nc = await stack.broker_connection("test-batches")
    pub = AckPublisher(nc)
    await pub.start()
    try:
        before = await _stored(stack)
        batches = AuditBatches(pub)
        subs = [_submission(f"one:{k}", 3) for k in range(10)]
        await asyncio.gather(*(batches.add(events) for events in subs))
        assert await _stored(stack) - before == 1  # ten submissions, one message

        # Too many bytes for one message: split between submissions, never inside one.
        more = [_submission(f"two:{k}", 3) for k in range(6)]
        one = len(encode_events(more[0])) - 1  # without its array header
        small = AuditBatches(pub, max_bytes=2 * one + one // 2)  # two fit, not three
        before = await _stored(stack)
        await asyncio.gather(*(small.add(events) for events in more))
        assert await _stored(stack) - before == 3

        # A redelivered submission's events come again in another message: the
        # sequencer appends them once.
        await batches.add(subs[0])
        want = sorted(e.details[EVENT_ID] for events in subs + more for e in events)
        events = await audit(stack, lambda evs: len(_ids(evs, "one:")) + len(_ids(evs, "two:"))
                             >= len(want))
        assert sorted(_ids(events, "one:") + _ids(events, "two:")) == want
    finally:
        pub.close()
        await nc.close()


async def test_every_submission_of_a_refused_message_is_told(stack: DevStack) -> None:
    """No stream listens on the subject: every waiting submission gets the failure
    (and would be retried), none is told its events are stored."""
    nc = await stack.broker_connection("test-batches-refused")
    pub = AckPublisher(nc, timeout=2.0)
    await pub.start()
    try:
        batches = AuditBatches(pub)
        # Point this publisher's messages at a subject no stream holds.
        real = pub.publish

        async def elsewhere(subject: str, payload: bytes, msg_id: str | None,
                            headers: dict[str, str] | None = None) -> asyncio.Future[None]:
            return await real("orcon.test.nowhere", payload, msg_id, headers)

        pub.publish = elsewhere  # type: ignore[method-assign]
        futures = [batches.add(_submission(f"refused:{k}", 2)) for k in range(4)]
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert len(results) == 4
        assert all(isinstance(r, PublishNotAcknowledged) for r in results), results
    finally:
        pub.close()
        await nc.close()


@pytest.mark.parametrize("n", [1, 15, 16, 70_000])
async def test_one_audit_message_frames_any_number_of_events(n: int) -> None:
    """What AuditBatches sends is the list the sequencer decodes, whatever its length
    (msgpack frames lists of up to 15, 65,535 and more differently)."""
    from broker.audit.events import AuditEvent
    from broker.audit.sequencer import decode_events
    from broker.routing.service import AuditBatches

    sent: list[bytes] = []

    class Recording:
        async def publish(self, subject: str, data: bytes, msg_id: str | None
                          ) -> asyncio.Future[None]:
            sent.append(data)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            fut.set_result(None)
            return fut

    events = [AuditEvent(type=EventType.SUBMITTED, at=datetime(2026, 1, 1, tzinfo=UTC),
                         broker="b", actor="TH-AHTD", message_id=f"m{i}") for i in range(n)]
    batches = AuditBatches(Recording(), max_bytes=1 << 30)  # type: ignore[arg-type]
    stored = [batches.add(events[:n // 2]), batches.add(events[n // 2:])]
    await asyncio.gather(*stored)
    assert len(sent) == 1
    assert decode_events(sent[0]) == events


async def test_a_store_refusing_one_submission_leaves_the_rest_of_its_pass_routed(
        stack: DevStack) -> None:
    """DELIVER's message size shrunk between a small and a large delivery: the large
    submission is retried, then dead-lettered; the small one, submitted right behind it
    (the same pass when the broker takes them together), is delivered once, its
    outcome reported."""
    broker = stack.brokers[0]
    broker.config.retry_delays = (0.05, 0.1, 0.2)
    ops = await stack.sequencer_connection("test-ops")
    th = await connect(stack, "TH-AHTD")
    deliver = next(c for c in stream_configs() if c.name == s.DELIVER_STREAM)

    def report(text: str) -> schemas.IntelReport:
        return schemas.IntelReport(title="Crossing",
                                   narrative=schemas.Narrative(text=text, lang="en"))

    big_header, big = signed(th, ["KH-AHTJP"], body=report("Boats at night. " * 200))
    small_header, small = signed(th, ["KH-AHTJP"], body=report("Boats at night."))
    assert len(big) > len(small) + 2500
    try:
        await ops.jetstream().update_stream(
            dataclasses.replace(deliver, max_msg_size=len(small) + 1000))
        acks = [await th.js.publish(s.submit("TH-AHTD"), wire,
                                    headers={"Nats-Msg-Id": header.id})
                for header, wire in ((big_header, big), (small_header, small))]
        assert len(acks) == 2
        outcome = await th.wait_outcome(small_header.id)
        assert outcome.delivered == ["KH-AHTJP"]
        for _ in range(100):
            if stack.metrics.registry.get_sample_value("orcon_dead_letters_total"):
                break
            await asyncio.sleep(0.1)
        assert stack.metrics.registry.get_sample_value("orcon_dead_letters_total") == 1
    finally:
        await ops.jetstream().update_stream(deliver)
        await ops.close()
        await th.close()


async def _last_seq(nc: NATS, stream: str) -> int:
    return int((await nc.jetstream().stream_info(stream)).state.last_seq)


async def test_messages_written_together_are_each_stored_once_with_their_headers(
        stack: DevStack) -> None:
    """`publish_many` (a fan-out's deliveries): one id each, the shared headers on every
    one, and the same ids again are JetStream duplicates, stored no second time."""
    nc = await stack.broker_connection("test-publish-many")
    pub = AckPublisher(nc)
    await pub.start()
    try:
        before = await _last_seq(nc, s.DELIVER_STREAM)
        shared = {"Orcon-Watch": "-"}
        batch = [(s.deliver("TH-AHTD"), b"payload %d" % k, f"many:{k}", shared)
                 for k in range(3)]
        await pub.wait(await pub.publish_many(batch))
        after = await _last_seq(nc, s.DELIVER_STREAM)
        assert after == before + 3
        js = nc.jetstream()
        for k in range(3):
            stored = await js.get_msg(s.DELIVER_STREAM, before + 1 + k)
            assert stored.data == b"payload %d" % k
            assert stored.headers is not None
            assert stored.headers["Nats-Msg-Id"] == f"many:{k}"
            assert stored.headers["Orcon-Watch"] == "-"
        await pub.wait(await pub.publish_many(batch))
        assert await _last_seq(nc, s.DELIVER_STREAM) == after
    finally:
        pub.close()
        await nc.close()


async def test_a_message_with_an_unnamable_subject_stops_the_whole_write(
        stack: DevStack) -> None:
    """A subject that would break the protocol line is refused before anything is sent:
    none of the others is stored, and no acknowledgment is left waiting."""
    nc = await stack.broker_connection("test-publish-refused")
    pub = AckPublisher(nc)
    await pub.start()
    try:
        before = await _last_seq(nc, s.DELIVER_STREAM)
        with pytest.raises(ValueError, match="not a valid NATS subject"):
            await pub.publish_many([(s.deliver("TH-AHTD"), b"a", "bad:1", None),
                                    ("orcon.deliver.TH AHTD", b"b", "bad:2", None)])
        await nc.flush()
        assert await _last_seq(nc, s.DELIVER_STREAM) == before
        assert not pub._futures
    finally:
        pub.close()
        await nc.close()
