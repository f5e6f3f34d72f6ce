"""Operations: configuration by file and environment, the health/metrics endpoint, and
the graceful drain of an `orcon broker` process on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

import schemas
from broker.audit.events import AuditEvent
from broker.audit.sequencer import SEQUENCER_CONSUMER, encode_events, event_with_id
from broker.hosting.config import ConfigError, load_settings
from broker.hosting.health import HealthServer
from broker.hosting.natsserver import EmbeddedNats
from broker.hosting.stack import DevStack
from broker.routing.fairness import queue_state
from clients.sdk.client import AgencyClient
from keys.envelope import seal
from schemas import Category, Level
from schemas.events import EventType
from transport import subjects as s
from transport.pull import StandingPulls

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "deploy" / "federation.toml"
ORCON = Path(sys.executable).parent / "orcon"


# ---- configuration ------------------------------------------------------------------


def test_environment_overrides_file_and_command_line_overrides_both(tmp_path: Path) -> None:
    f = tmp_path / "broker.toml"
    f.write_text('[broker]\nbroker_id = "b-file"\nmax_message_bytes = 2048\nhttp_port = 9100\n')
    got = load_settings(f, env={"ORCON_MAX_MESSAGE_BYTES": "4096", "ORCON_TLS": "false",
                                "ORCON_PASSPHRASE": "not a setting", "ORCON_HTTP_PORT": ""},
                        overrides={"broker_id": "b-cli", "http_port": None})
    assert (got.broker_id, got.max_message_bytes, got.tls, got.http_port) == \
        ("b-cli", 4096, False, 9100)
    assert load_settings(None, env={}).max_message_bytes == 1024 * 1024


@pytest.mark.parametrize(("text", "env", "field", "source"), [
    ('max_message_bytes = "big"\n', {}, "max_message_bytes", "broker.toml"),
    ("max_message_bytes = 10\n", {}, "max_message_bytes", "broker.toml"),
    ("brokr_id = 'x'\n", {}, "brokr_id", "broker.toml"),
    ("", {"ORCON_FETCH_BATCH": "lots"}, "fetch_batch", "ORCON_FETCH_BATCH"),
    ("", {"ORCON_HTTP_PORT": "70000"}, "http_port", "ORCON_HTTP_PORT"),
    ('tls_cert_file = "/nonexistent.pem"\n', {}, "tls_key_file", "configuration"),
    ("x = \n", {}, "-", "broker.toml"),
])
def test_errors_name_the_field_and_its_source(
    tmp_path: Path, text: str, env: dict[str, str], field: str, source: str
) -> None:
    f = tmp_path / "broker.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(f, env=env)
    assert info.value.field == field
    assert source in info.value.source
    assert field in str(info.value)


def test_a_setting_beside_the_broker_table_is_refused_not_ignored(tmp_path: Path) -> None:
    f = tmp_path / "orcon.toml"
    f.write_text('max_message_bytes = 4096\n[broker]\nbroker_id = "b1"\n')
    with pytest.raises(ConfigError, match=r"max_message_bytes.*outside the \[broker\] table"):
        load_settings(f, env={})
    f.write_text('[broker]\nbroker_id = "b1"\nmax_message_bytes = 4096\n')
    assert load_settings(f, env={}).max_message_bytes == 4096


def test_cli_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    f = tmp_path / "broker.toml"
    f.write_text("fetch_batch = 0\n")
    proc = subprocess.run([str(ORCON), "broker", "--data-dir", str(tmp_path), "--config", str(f)],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 1
    assert "fetch_batch" in proc.stderr and "Traceback" not in proc.stderr


# ---- health and metrics -------------------------------------------------------------


async def _get(port: int, path: str, method: str = "GET") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_health_ready_and_metrics_follow_the_broker(tmp_path: Path) -> None:
    stop = asyncio.Event()
    async with DevStack(tmp_path / "s", SAMPLE, fast_kdf=True, head_interval=0.2) as st:
        assert st.connection is not None
        nc = await st.broker_connection("health")
        health = HealthServer(nc, st.metrics, ready=lambda: not stop.is_set())
        await health.start()
        th = await AgencyClient.connect(st.connection, "TH-AHTD", passphrase=st.passphrase())
        try:
            assert await _get(health.port, "/healthz") == (200, b'{"status": "ok", '
                                                               b'"reason": "ok"}\n')
            assert (await _get(health.port, "/readyz"))[0] == 200
            body = schemas.IntelReport(title="t",
                                       narrative=schemas.Narrative(text="x", lang="en"))
            sent = await th.send(body, category=Category.ROUTES, level=Level.RESTRICTED,
                                 to=["KH-AHTJP"])
            await th.wait_outcome(sent.header.id)
            status, text = await _get(health.port, "/metrics")
            assert status == 200
            assert b"orcon_deliveries_total 1.0" in text
            assert b"orcon_route_seconds_bucket" in text
            assert b"orcon_consumer_pending 0.0" in text
            assert b"orcon_nats_connected 1.0" in text
            assert b"Mekong" not in text and b"TH-AHTD" not in text  # counts, not content
            assert (await _get(health.port, "/nope"))[0] == 404
            assert (await _get(health.port, "/healthz", "POST"))[0] == 405
            assert (await _get(health.port, "/healthz", "HEAD")) == (200, b"")

            stop.set()  # draining: no longer ready, still alive
            assert (await _get(health.port, "/readyz"))[0] == 503
            assert (await _get(health.port, "/healthz"))[0] == 200

            # Lag: with the brokers stopped, submissions wait in the consumer.
            for b in st.brokers:
                await b.stop()
            for _ in range(3):  # pre-sealed: the SDK's directory refresh needs a broker
                await _submit_sealed(th, body)
            # A pull request the stopped broker left open may still hold some of them
            # (ack pending, redelivered after ack_wait): together they are the lag.
            for _ in range(20):
                status, text = await _get(health.port, "/metrics")
                lag = _gauge(text, "orcon_consumer_pending") + \
                    _gauge(text, "orcon_consumer_ack_pending")
                if lag == 3:
                    break
                await asyncio.sleep(0.1)
            assert lag == 3, text

            await nc.close()  # the process lost NATS: unhealthy, but still answering
            status, text = await _get(health.port, "/healthz")
            assert status == 503 and b"NATS" in text
            assert (await _get(health.port, "/metrics"))[0] == 200
        finally:
            await health.stop()
            await th.close()
            await nc.close()


async def _submit_sealed(th: AgencyClient, body: schemas.IntelReport) -> str:
    h = th.draft(body, category=Category.ROUTES, level=Level.RESTRICTED, to=["KH-AHTJP"])
    recipients = th.directory.recipients_for("KH-AHTJP", th.clock())
    env = seal(schemas.encode(h), schemas.encode(body), recipients, th.identity)
    await th.js.publish(s.submit("TH-AHTD"), schemas.encode_envelope(env),
                        headers={"Nats-Msg-Id": h.id})
    return h.id


def _gauge(text: bytes, name: str) -> float:
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exposed")


# ---- SIGTERM drain ------------------------------------------------------------------

async def test_standing_pulls_stop_hands_over_everything_the_server_sent(
    tmp_path: Path,
) -> None:
    """Stopping the standing pull requests while the server is streaming a backlog into
    them: every message the server counts as delivered reaches the callback, so once
    those are acknowledged nothing is left pending (a plain unsubscribe dropped what
    was already on the wire, and the server kept it pending until its ack_wait)."""
    srv = EmbeddedNats(tmp_path)
    srv.start(f'{{"listen": "127.0.0.1:{srv.port}", '
              f'"jetstream": {{"store_dir": "{tmp_path / "js"}"}}}}')
    nc = await nats.connect(srv.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        await js.add_consumer("S", ConsumerConfig(
            durable_name="c", ack_policy=AckPolicy.EXPLICIT, ack_wait=60,
            max_ack_pending=1000))
        n = 2000  # 4 KiB each, 1000 sent at once (max_ack_pending): a while on the wire
        for i in range(0, n, 500):
            await asyncio.gather(*(js.publish("s.k", bytes(4096)) for _ in range(i, i + 500)))
        got: list[Msg] = []
        first = asyncio.Event()

        def on_msg(_key: str, msg: Msg) -> None:
            got.append(msg)
            first.set()

        pulls = StandingPulls(nc, "S", on_msg, lambda _k: n, lambda _m: "k")
        await pulls.start()
        pulls.add("k", "c")
        pulls.top_up("k")
        await asyncio.wait_for(first.wait(), timeout=10)
        at_stop = len(got)
        await pulls.stop()
        await asyncio.gather(*(m.ack_sync() for m in got))
        info = await js.consumer_info("S", "c")
        assert info.num_ack_pending == 0
        assert info.delivered.consumer_seq == len(got)
        assert info.num_pending == n - len(got)  # the rest waits for the next consumer
        assert len(got) > at_stop, "nothing was on its way when stopping: proves nothing"
    finally:
        await nc.close()
        srv.stop()



async def test_sequencer_stop_appends_what_is_in_hand_and_leaves_nothing_pending(
    tmp_path: Path,
) -> None:
    """The audit sequencer stopped while events stream in: what it was handed is
    appended and acknowledged (before, the events queued behind the batch in progress
    stayed unacknowledged until the consumer's ack_wait)."""
    async with DevStack(tmp_path / "s", SAMPLE, fast_kdf=True, head_interval=0.2) as st:
        node, seq = st.sequencer, st.audit
        assert node is not None and seq is not None
        nc = await st.broker_connection("events")
        ops = await st.sequencer_connection("observer")
        try:
            js = nc.jetstream()
            start, n = seq.size, 3000
            now = st.clock()
            await asyncio.gather(*(js.publish(s.AUDIT_IN_SUBJECT, encode_events([
                event_with_id(AuditEvent(type=EventType.DELIVERED, at=now, broker="b-1",
                                         actor="TH-AHTD", counterpart="KH-AHTJP",
                                         message_id=f"m{i}"), f"drain-{i}")]))
                for i in range(n)))
            for _ in range(400):
                if seq.size > start:
                    break
                await asyncio.sleep(0.005)
            await node.stop()
            appended = seq.size - start
            info = await ops.jetstream().consumer_info(s.AUDIT_IN_STREAM, SEQUENCER_CONSUMER)
            assert info.num_ack_pending == 0
            assert appended + info.num_pending == n
            assert 0 < appended < n, "stopped before or after the stream: proves nothing"
        finally:
            await nc.close()
            await ops.close()


async def test_sigterm_drains_an_orcon_broker_process(tmp_path: Path) -> None:
    """A broker process SIGTERM'd mid-stream finishes and acknowledges what it holds and
    exits 0; nothing it took is left unacknowledged, lost or delivered twice."""
    n = 300
    data = tmp_path / "s"
    async with DevStack(data, SAMPLE, brokers=1, fast_kdf=True, tls=True,
                        ack_wait_s=30.0, head_interval=0.5) as st:
        assert st.connection is not None
        pw = st.passphrase()
        # Clients fetch the key directory from a broker when they connect; then the
        # in-process broker leaves, so the backlog waits for the process under test.
        th = await AgencyClient.connect(st.connection, "TH-AHTD", passphrase=pw)
        kh = await AgencyClient.connect(st.connection, "KH-AHTJP", passphrase=pw)
        await st.brokers[0].stop()
        ops = await st.broker_connection("observer")
        proc: subprocess.Popen[bytes] | None = None
        try:
            body = schemas.IntelReport(title="t",
                                       narrative=schemas.Narrative(text="x", lang="en"))
            ids = [await _submit_sealed(th, body) for _ in range(n)]
            log = (tmp_path / "broker.log").open("wb")
            proc = subprocess.Popen(
                [str(ORCON), "broker", "--data-dir", str(data), "--id", "b-term"],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                env={**os.environ, "ORCON_FETCH_BATCH": "16"},
            )
            log.close()
            # Wait until the process is routing, then stop it while it holds a batch.
            first = await th.outcomes(limit=1, timeout=30)
            assert first, "the broker process never routed anything"
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 30)
            assert code == 0, (tmp_path / "broker.log").read_text()[-2000:]
            js = ops.jetstream()
            info = await queue_state(js)
            assert info.ack_pending == 0  # nothing left in hand
            assert info.redelivered == 0
            routed_by_process = n - info.pending
            assert routed_by_process > 0, "SIGTERM came after all work: test proves nothing"

            # Another broker finishes the rest; every message arrives exactly once.
            await st.add_broker("b-after")
            got: list[str] = []
            deadline = time.monotonic() + 30
            while len(got) < n and time.monotonic() < deadline:
                got += [m.header.id for m in (await kh.inbox(limit=200, timeout=1)).messages]
            await asyncio.sleep(0.5)
            got += [m.header.id for m in (await kh.inbox(limit=200, timeout=0.5)).messages]
            assert len(got) == len(set(got)) == n
            assert set(got) == set(ids)
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                with contextlib.suppress(Exception):
                    proc.wait(5)
            await th.close()
            await kh.close()
            await ops.close()
