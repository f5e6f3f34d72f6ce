"""Defense in depth: with agency A's own credentials and a raw NATS connection (no
SDK), the nats-server itself refuses everything outside A's lane."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.js.api import ConsumerConfig

from broker.hosting.stack import DevStack
from tests.support.raw_nats import Violations, connect_as
from transport import subjects as s

A, B = "KH-AHTJP", "VN-MPS"


@pytest.fixture
async def as_a(stack: DevStack):  # type: ignore[no-untyped-def]
    v = Violations()
    nc = await connect_as(stack, A, v.on_error)
    yield nc, v
    await nc.close()


async def test_cannot_subscribe_to_another_agencys_deliveries(as_a) -> None:  # type: ignore[no-untyped-def]
    nc, v = as_a
    await nc.subscribe(s.deliver(B))
    await nc.flush()
    assert "subscription" in await v.wait_for(s.deliver(B))


async def test_cannot_listen_on_another_agencys_inbox(as_a) -> None:  # type: ignore[no-untyped-def]
    nc, v = as_a
    await nc.subscribe(f"{s.inbox_prefix(B)}.>")
    await nc.flush()
    assert "subscription" in await v.wait_for(s.inbox_prefix(B))


async def test_cannot_publish_as_another_agency(as_a) -> None:  # type: ignore[no-untyped-def]
    nc, v = as_a
    await nc.publish(s.submit(B), b"forged")
    await nc.flush()
    assert "publish" in await v.wait_for(s.submit(B))


async def test_cannot_publish_deliveries_directly(as_a) -> None:  # type: ignore[no-untyped-def]
    nc, v = as_a
    await nc.publish(s.deliver(B), b"forged delivery")
    await nc.flush()
    assert "publish" in await v.wait_for(s.deliver(B))


async def test_cannot_fetch_from_another_agencys_consumer(as_a) -> None:  # type: ignore[no-untyped-def]
    nc, v = as_a
    sub = await nc.jetstream().pull_subscribe_bind(s.inbox_consumer(B), s.DELIVER_STREAM)
    with pytest.raises((nats.errors.TimeoutError, asyncio.TimeoutError)):
        await sub.fetch(1, timeout=0.5)
    await v.wait_for(f"consumer.msg.next.{s.DELIVER_STREAM}.{s.inbox_consumer(B)}")


async def test_cannot_create_consumer_on_another_agencys_subject(as_a) -> None:  # type: ignore[no-untyped-def]
    nc, v = as_a
    js = nc.jetstream(timeout=0.5)
    with pytest.raises((nats.errors.TimeoutError, asyncio.TimeoutError, nats.js.errors.Error)):
        await js.add_consumer(s.DELIVER_STREAM, ConsumerConfig(
            durable_name="snoop", filter_subject=s.deliver(B)))
    await v.wait_for(f"$js.api.consumer.durable.create.{s.DELIVER_STREAM}.snoop")


async def test_cannot_read_the_audit_stream(as_a) -> None:  # type: ignore[no-untyped-def]
    nc, v = as_a
    js = nc.jetstream(timeout=0.5)
    with pytest.raises((nats.errors.TimeoutError, asyncio.TimeoutError, nats.js.errors.Error)):
        await js.get_msg(s.AUDIT_STREAM, 1)
    await v.wait_for(f"$js.api.stream.msg.get.{s.AUDIT_STREAM}")


async def test_cannot_delete_or_purge_stream_messages(as_a) -> None:  # type: ignore[no-untyped-def]
    nc, v = as_a
    js = nc.jetstream(timeout=0.5)
    with pytest.raises((nats.errors.TimeoutError, asyncio.TimeoutError, nats.js.errors.Error)):
        await js.delete_msg(s.DELIVER_STREAM, 1)
    await v.wait_for(f"$js.api.stream.msg.delete.{s.DELIVER_STREAM}")
    with pytest.raises((nats.errors.TimeoutError, asyncio.TimeoutError, nats.js.errors.Error)):
        await js.purge_stream(s.DELIVER_STREAM)
    await v.wait_for(f"$js.api.stream.purge.{s.DELIVER_STREAM}")


async def test_audit_stream_denies_delete_and_purge_even_for_the_broker(stack: DevStack) -> None:
    nc = await stack.broker_connection("test")
    try:
        js = nc.jetstream(timeout=2)
        info = await js.stream_info(s.AUDIT_STREAM)
        assert info.config.deny_delete and info.config.deny_purge
        # Refused twice over: the broker's credential may not send a purge at all (the
        # server reports a violation, the request times out), and the stream denies it.
        with pytest.raises((nats.js.errors.Error, nats.errors.TimeoutError)):
            await js.purge_stream(s.AUDIT_STREAM)
    finally:
        await nc.close()


async def test_auditor_reads_audit_but_not_deliveries(stack: DevStack) -> None:
    v = Violations()
    nc = await connect_as(stack, "XX-AUDIT", v.on_error)
    try:
        js = nc.jetstream(timeout=2)
        info = await js.stream_info(s.AUDIT_STREAM)
        assert info.config.name == s.AUDIT_STREAM
        await nc.subscribe(s.deliver(A))
        await nc.flush()
        await v.wait_for(s.deliver(A))
    finally:
        await nc.close()
