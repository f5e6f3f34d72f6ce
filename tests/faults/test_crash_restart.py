"""Principle 6, "nothing lost, nothing doubled", against real failures.

Each test runs the real nats-server (JetStream file storage) and two `orcon broker`
processes, publishes `ORCON_FAULT_N` pre-sealed submissions (default 10,000: the full
size runs in CI because it takes well under a minute on a 2-core machine; lower it with
the variable if a machine is slower), injects one fault while the stream is half-way
through, and checks what the recipient's *application* receives from the SDK:
every accepted message id, each exactly once.

Redelivery after a crash waits for the consumer's ack wait; the stack is created with
`ack_wait_s=2` so the test does not sit out the production 30 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from broker.hosting.stack import DevStack
from clients.sdk.client import AgencyClient
from tests.support.harness import (
    BrokerProcess,
    Collected,
    collect,
    env_int,
    preseal,
    publish_all,
    submit_state,
)
from tests.support.paths import SAMPLE_FEDERATION as SAMPLE

N = env_int("ORCON_FAULT_N", 10_000)
SENDER, RECIPIENT = "TH-AHTD", "KH-AHTJP"


@dataclass
class Rig:
    stack: DevStack
    brokers: list[BrokerProcess]
    sender: AgencyClient
    recipient: AgencyClient


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    data = tmp_path / "stack"
    async with DevStack(data, SAMPLE, brokers=0, fast_kdf=True, ack_wait_s=2.0,
                        head_interval=1.0) as stack:
        procs = [BrokerProcess(data, "b1"), BrokerProcess(data, "b2")]
        clients: list[AgencyClient] = []
        try:
            for p in procs:
                await asyncio.to_thread(p.start)
            assert stack.connection is not None
            for agency in (SENDER, RECIPIENT):
                clients.append(await AgencyClient.connect(
                    stack.connection, agency, passphrase=stack.passphrase()))
            yield Rig(stack, procs, clients[0], clients[1])
        finally:
            for c in clients:
                await c.close()
            await asyncio.gather(*(asyncio.to_thread(p.stop) for p in procs))


async def _run_with_fault(
    rig: Rig, fault: Callable[[], Awaitable[None]], *, while_publishing: bool = False
) -> dict[str, float]:
    """Inject `fault` once a quarter of the messages are delivered, or, with
    `while_publishing`, once half of them are published: the brokers are then surely
    busy (the recipient lags behind them, so a delivered count is no proof of that)
    and the sender rides the fault out too."""
    items = preseal(rig.sender, [RECIPIENT], N)
    want = {mid for mid, _ in items}
    started = time.monotonic()
    half_published = asyncio.Event()

    def progress(done: int) -> None:
        if done >= N // 2:
            half_published.set()

    publisher = asyncio.create_task(
        publish_all(rig.sender.js, SENDER, items, on_progress=progress))
    got = Collected()
    if while_publishing:
        await asyncio.wait_for(half_published.wait(), timeout=90)
        assert not publisher.done()
    else:
        # A quarter of the messages are delivered, the rest are in flight.
        await collect(rig.recipient, want, got, deadline_s=90, until=N // 4)
        assert len(set(got.ids)) >= N // 4, "the stream never got going"
    ops = await rig.stack.broker_connection("observer")
    try:
        pending, ack_pending, _ = await submit_state(ops.jetstream())
        # The fault must hit a stream still in flight, or the test proves nothing.
        assert pending + ack_pending > 0 or not publisher.done()
        await fault()
        await collect(rig.recipient, want, got, deadline_s=120)
        retries = await asyncio.wait_for(publisher, timeout=60)
        _, _, redelivered = await submit_state(ops.jetstream())
    finally:
        await ops.close()
    elapsed = time.monotonic() - started

    ids = got.ids
    assert got.rejected == 0
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} messages handed over twice"
    missing = want - set(ids)
    assert not missing, f"{len(missing)} of {N} accepted messages lost"
    assert set(ids) == want
    # Nothing more arrives later either (a late duplicate would be handed over here).
    late = await rig.recipient.inbox(limit=500, timeout=1.0)
    assert late.messages == []
    return {"n": N, "seconds": round(elapsed, 1), "publish_retries": retries,
            "redelivered": redelivered}


async def test_kill9_broker_mid_stream_loses_and_doubles_nothing(rig: Rig) -> None:
    b1, b2 = rig.brokers

    async def kill() -> None:
        b1.kill9()  # SIGKILL: no drain, no acks for the batch in hand

    figures = await _run_with_fault(rig, kill, while_publishing=True)
    assert not b1.alive and b2.alive, "the surviving broker must have finished the stream"
    print(f"\nkill -9 broker: {figures}")


async def test_nats_restart_mid_stream_loses_and_doubles_nothing(rig: Rig) -> None:
    server = rig.stack.server
    assert server is not None
    old_pid = server.pid

    async def restart() -> None:
        await asyncio.to_thread(server.restart)

    figures = await _run_with_fault(rig, restart, while_publishing=True)
    assert server.pid != old_pid and server.running
    assert all(b.alive for b in rig.brokers), "brokers must ride out a server restart"
    print(f"\nnats-server restart: {figures}")
