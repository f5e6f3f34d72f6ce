"""An agency's deliveries are on two subjects (watched by the acknowledgment watcher or
not: transport/subjects.py); the split gives nobody more than before. With agency A's
own credential and a raw NATS connection, the server refuses A reading B's deliveries
on either subject (subscribing, or creating a consumer that filters B's watched
subject), publishing on either subject (its own or B's), and subscribing to every
agency's watched deliveries at once; A's inbox consumer reads exactly A's two subjects.
(The services' credentials on the unwatched subject: test_service_credentials.py.)"""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.js.api import ConsumerConfig

from broker.hosting.stack import DevStack
from tests.support.raw_nats import Violations, connect_as
from transport import subjects as s

A, B = "KH-AHTJP", "VN-MPS"


async def test_an_agency_reads_neither_subject_of_another_and_writes_neither(
        stack: DevStack) -> None:
    v = Violations()
    nc = await connect_as(stack, A, v.on_error)
    try:
        for subject in (s.deliver(B), s.deliver_unwatched(B), s.DELIVER_WATCHED,
                        s.DELIVER_UNWATCHED, "orcon.deliver.>"):
            await nc.subscribe(subject)
            await nc.flush()
            assert "subscription" in await v.wait_for(f'subscription to "{subject}"')
        for subject in (s.deliver(A), s.deliver_unwatched(A), s.deliver(B),
                        s.deliver_unwatched(B)):
            await nc.publish(subject, b"forged delivery")
            await nc.flush()
            assert "publish" in await v.wait_for(f'publish to "{subject}"')
        # A consumer of B's watched deliveries (urgent messages, acknowledgments).
        js = nc.jetstream(timeout=0.5)
        for name, subject in (("snoop-watched", s.deliver(B)),
                              ("snoop-unwatched", s.deliver_unwatched(B))):
            with pytest.raises((nats.errors.TimeoutError, asyncio.TimeoutError,
                                nats.js.errors.Error)):
                await js.add_consumer(s.DELIVER_STREAM, ConsumerConfig(
                    durable_name=name, filter_subject=subject))
            await v.wait_for(f"$js.api.consumer.durable.create.{s.DELIVER_STREAM}.{name}")

        # A's own inbox: both of A's subjects, nobody else's.
        mine = await nc.jetstream(timeout=5).consumer_info(
            s.DELIVER_STREAM, s.inbox_consumer(A))
        assert mine.config.filter_subject is None
        assert mine.config.filter_subjects == [s.deliver(A), s.deliver_unwatched(A)]
    finally:
        await nc.close()

