"""A recipient that is offline for a while receives its backlog, in order, on return.

Deliveries wait in the recipient's durable consumer (file storage); nothing depends on
the recipient being connected when the broker routes. One `orcon broker` process, so
the order of submission is the order of routing (with several brokers sharing the
work queue, messages of one sender may be routed in parallel, hence out of order).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from broker.hosting.stack import DevStack
from clients.sdk.client import AgencyClient
from tests.support.harness import (
    BrokerProcess,
    Collected,
    collect,
    consumer_state,
    preseal,
    submit_state,
)
from tests.support.paths import SAMPLE_FEDERATION as SAMPLE
from transport import subjects as s

BACKLOG = 500


async def test_offline_recipient_gets_backlog_in_order(tmp_path: Path) -> None:
    data = tmp_path / "stack"
    async with DevStack(data, SAMPLE, brokers=0, fast_kdf=True, ack_wait_s=2.0) as stack:
        broker = BrokerProcess(data, "b1")
        await asyncio.to_thread(broker.start)
        assert stack.connection is not None
        conn, pw = stack.connection, stack.passphrase()
        th = await AgencyClient.connect(conn, "TH-AHTD", passphrase=pw)
        ops = await stack.broker_connection("observer")
        try:
            # Online first: one message goes through, then the recipient leaves.
            kh = await AgencyClient.connect(conn, "KH-AHTJP", passphrase=pw)
            first = preseal(th, ["KH-AHTJP"], 1)
            await th.js.publish(s.submit("TH-AHTD"), first[0][1],
                                headers={"Nats-Msg-Id": first[0][0]})
            got = await collect(kh, {first[0][0]}, Collected(), deadline_s=20)
            assert got.ids == [first[0][0]]
            await kh.close()

            # Offline: the sender goes on, one publish at a time (a defined order).
            items = preseal(th, ["KH-AHTJP"], BACKLOG)
            for mid, wire in items:
                await th.js.publish(s.submit("TH-AHTD"), wire, headers={"Nats-Msg-Id": mid})
            js = ops.jetstream()
            for _ in range(300):  # the broker routes everything while KH is away
                pending, ack_pending, _ = await submit_state(js)
                if pending == ack_pending == 0:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(2.5)  # longer than the ack wait: still nothing is lost
            waiting, _, _ = await consumer_state(js, s.DELIVER_STREAM,
                                                 s.inbox_consumer("KH-AHTJP"))
            assert waiting == BACKLOG

            # Back online, with a fresh process-like client (no memory of the past).
            kh2 = await AgencyClient.connect(conn, "KH-AHTJP", passphrase=pw)
            try:
                want = [mid for mid, _ in items]
                got = await collect(kh2, set(want), Collected(), deadline_s=60, limit=100)
                assert got.rejected == 0
                assert got.ids == want, "the backlog must arrive complete and in order"
            finally:
                await kh2.close()
        finally:
            await ops.close()
            await th.close()
            await asyncio.to_thread(broker.stop)
