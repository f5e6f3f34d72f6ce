"""Three nats-server nodes, streams with three replicas: routing continues while one
node is down, first a node the broker is not connected to, then the broker's own node
(the broker and the clients reconnect to a remaining node). Every message is delivered
exactly once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from nats.js import JetStreamContext

import schemas
from broker.hosting.cluster import LocalCluster
from broker.routing.service import Broker, BrokerConfig
from clients.sdk.client import AgencyClient
from keys.directory import Directory
from keys.envelope import seal
from policies.engine import PolicyEngine
from policies.federation import load_federation
from schemas import Category, Level
from tests.support.paths import SAMPLE_FEDERATION as SAMPLE
from transport import subjects as s

PER_PHASE = 5

pytestmark = pytest.mark.timeout(60)


async def _submit(js: JetStreamContext, client: AgencyClient, deadline: float) -> str:
    """Seal and publish one message, retrying until JetStream acknowledges: during a
    leader election a publish may time out; the same Nats-Msg-Id makes retries safe."""
    body = schemas.IntelReport(title="t", narrative=schemas.Narrative(text="x", lang="en"))
    header = client.draft(body, category=Category.ROUTES, level=Level.RESTRICTED,
                          to=["KH-AHTJP"])
    recipients = client.directory.recipients_for("KH-AHTJP", client.clock())
    env = seal(schemas.encode(header), schemas.encode(body), recipients, client.identity)
    data = schemas.encode_envelope(env)
    while True:
        try:
            await js.publish(s.submit(client.agency), data,
                             headers={"Nats-Msg-Id": header.id}, timeout=2)
            return header.id
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _collect(kh: AgencyClient, want: set[str], got: list[str], deadline: float) -> None:
    while not want <= set(got) and time.monotonic() < deadline:
        try:
            batch = await kh.inbox(timeout=1)
        except Exception:  # the recipient's node went away: it reconnects
            await asyncio.sleep(0.2)
            continue
        got += [m.header.id for m in batch.messages]


async def test_routing_survives_one_node_down_and_the_brokers_node_down(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    deadline = started + 40
    async with LocalCluster(tmp_path / "c", SAMPLE, fast_kdf=True, ack_wait_s=5) as cluster:
        conn = cluster.connection
        assert conn is not None and len(conn.servers) == 3
        bnc = await cluster.broker_connection("broker-1", first="n1")
        broker = Broker(
            bnc, PolicyEngine(load_federation(Path(conn.federation))),
            Directory.load(Path(conn.directory).read_bytes(), bytes.fromhex(conn.root_public)),
            BrokerConfig(broker_id="broker-1"),
        )
        await broker.start()
        assert cluster.node_of(bnc) == "n1"
        passphrase = cluster.passphrase
        th = await AgencyClient.connect(conn, "TH-AHTD", passphrase=passphrase)
        kh = await AgencyClient.connect(conn, "KH-AHTJP", passphrase=passphrase)
        ops = await cluster.broker_connection("observer", first="n3")
        try:
            sent: list[str] = []
            got: list[str] = []

            async def phase() -> None:
                for _ in range(PER_PHASE):
                    sent.append(await _submit(th.js, th, deadline))
                await _collect(kh, set(sent), got, deadline)
                assert set(sent) <= set(got), f"missing {set(sent) - set(got)}"

            await phase()

            # 1. A node the broker is not on stops.
            cluster.stop_node("n2")
            await cluster.wait_healthy(ops, timeout=20)
            await phase()
            assert cluster.node_of(bnc) == "n1"

            # Back to three, so the next stop leaves a quorum again.
            await asyncio.to_thread(cluster.start_node, "n2")
            await cluster.wait_healthy(ops, timeout=20)

            # 2. The broker's own node stops: it must reconnect elsewhere and go on.
            await ops.close()
            ops = await cluster.broker_connection("observer", first="n2")
            cluster.stop_node("n1")
            await cluster.wait_healthy(ops, timeout=20)
            await phase()
            assert bnc.is_connected and cluster.node_of(bnc) != "n1"

            # Exactly once: no duplicate delivery across failovers (dedupe ids hold).
            await _collect(kh, set(), got, time.monotonic() + 1.5)
            assert len(got) == len(set(got)) == 3 * PER_PHASE
            assert sorted(got) == sorted(sent)
        finally:
            await broker.stop()
            for c in (th, kh):
                await c.close()
            for nc in (bnc, ops):
                if not nc.is_closed:
                    await nc.close()
