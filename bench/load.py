"""The live half of `orcon bench`: a real nats-server, real broker processes, real
agencies, and the loads that measure them.

Topology (every box is its own OS process, as in production):

    bench (this process)                 stack child            broker children
    load generator, recipients,  <-->    nats-server (Go)  <--> `orcon broker` x 1 or 2
    delivery observer                    + audit sequencer

What each figure measures is written next to it in docs/bench.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

import schemas
from bench.proc import die_with_parent
from broker.hosting.node import BROKER_NAME
from broker.routing.fairness import queue_state
from clients.sdk.client import AgencyClient, Received
from keys.directory import Directory
from keys.envelope import seal
from keys.keyfile import load_identity
from policies.countries import ISO_COUNTRIES
from policies.federation import dumps, federation_from_dict
from schemas.examples import _en, arrest_alert, mekong_route_report
from transport import subjects as s
from transport.connection import Connection, connect_nats, load_connection

SENDER = "HQ-BENCH"
BASIS = "BENCH-BASIS"
GROUP = "BENCH-FOCAL"
PAYLOAD = 1024  # bytes of the intelligence report body


class BenchError(RuntimeError):
    """A phase of the benchmark failed or timed out; the message says which."""


@dataclass(frozen=True)
class Plan:
    """Sizes of one run. `full` is the reference; `quick` fits CI smoke use (< 1 min);
    `smoke` (hidden) only proves that every phase works."""

    name: str
    focal_points: int  # recipients of the fan-out alert
    pubsub_n: int  # plain publish -> subscribe
    relay_n: int  # through the bare relay
    routed_n: int  # backlog drained by 1 and by 2 brokers
    secure_n: int  # whole path, opened by the recipient
    latency_s: float  # seconds of paced load at each rate
    rates: tuple[int, ...]
    fanout_runs: int
    micro_s: float  # seconds per micro-benchmark figure
    audit_entries: int
    gpg_s: float
    flood_n: int  # junk submissions one agency floods while another sends
    audit_e2e_n: int  # audit events appended through NATS, end to end


PLANS: dict[str, Plan] = {
    "full": Plan("full", 195, 100_000, 50_000, 5_000, 5_000, 10.0, (100, 1000), 10,
                 1.0, 100_000, 2.0, 100_000, 40_000),
    "quick": Plan("quick", 195, 20_000, 10_000, 1_500, 1_500, 3.0, (100, 1000), 5,
                  0.25, 20_000, 0.5, 20_000, 10_000),
    "smoke": Plan("smoke", 195, 2_000, 1_000, 300, 300, 1.0, (100, 1000), 2,
                  0.05, 2_000, 0.1, 1_000, 1_000),
}
FLOOD_RATE = 100  # msg/s the honest agency sends, idle and during the flood


# ---- the federation ------------------------------------------------------------------


def focal_ids(n: int) -> list[str]:
    return [f"{c}-FP" for c in sorted(ISO_COUNTRIES)[:n]]


def write_federation(path: Path, focal_points: int) -> list[str]:
    """One sender (an INTERPOL-style headquarters) and `focal_points` national focal
    points, all in one group that is party to one basis agreement. Returns the focal
    point ids."""
    ids = focal_ids(focal_points)
    agencies: list[dict[str, Any]] = [
        {"id": SENDER, "name": "Bench headquarters", "country": "FR",
         "type": "international_organization", "roles": ["liaison"], "clearance": "SECRET"},
    ]
    agencies += [
        {"id": a, "name": f"Focal point {a[:2]}", "country": a[:2], "type": "ncb",
         "roles": ["liaison", "focal_point"], "clearance": "SECRET"}
        for a in ids
    ]
    fed = federation_from_dict({
        "name": "orcon bench federation",
        "agencies": agencies,
        "groups": [{"id": GROUP, "name": "every focal point", "members": [SENDER, *ids]}],
        "agreements": [{
            "id": BASIS, "title": "bench basis", "parties": [GROUP],
            "categories": ["a", "b", "c", "d", "e", "f", "other"],
            "valid_from": date(2000, 1, 1), "legal_basis": "benchmark only",
        }],
    }, source=str(path))
    path.write_text(dumps(fed))
    return ids


def report_1k() -> schemas.IntelReport:
    """The route report of the examples, cut down and padded to exactly PAYLOAD bytes."""
    base = mekong_route_report()
    text = base.narrative.text
    route = msgspec.structs.replace(base.routes[0], groups=[])
    body = msgspec.structs.replace(base, persons=base.persons[:1], groups=[], concealment=[],
                                   modus_operandi=[], conveyances=[], routes=[route])
    for cut in range(len(text), 0, -1):
        candidate = msgspec.structs.replace(body, narrative=_en(text[:cut]))
        if len(schemas.encode(candidate)) <= PAYLOAD:
            pad = PAYLOAD - len(schemas.encode(candidate))
            filler = (text[cut:] + text)[:pad] if pad else ""
            padded = msgspec.structs.replace(body, narrative=_en(text[:cut] + filler))
            if len(schemas.encode(padded)) == PAYLOAD:
                return padded
            return candidate
    return body


def alert_body() -> schemas.Body:
    return arrest_alert()


# ---- child processes -------------------------------------------------------------------


@dataclass
class Child:
    name: str
    proc: asyncio.subprocess.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 8) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _child_env() -> dict[str, str]:
    """The environment of a bench child: `bench` is not an installed package, so the
    child finds it (`python -m bench.proc`) from the checkout this module runs from."""
    root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


@dataclass
class Children:
    """Every process the bench starts; `stop_all` ends them (SIGTERM, then SIGKILL)."""

    logs: Path
    started: list[Child] = field(default_factory=list)

    async def start(self, name: str, args: Sequence[str], *, ready: bool,
                    timeout: float = 60.0) -> tuple[Child, str]:
        log = self.logs / f"{name}.log"
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE if ready else asyncio.subprocess.DEVNULL,
                stderr=err,
                preexec_fn=die_with_parent,
                env=_child_env(),
            )
        child = Child(name, proc, log)
        self.started.append(child)
        if not ready:
            return child, ""
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        except TimeoutError:
            raise BenchError(f"{name} did not start within {timeout:.0f} s:\n"
                             f"{child.log_tail()}") from None
        if not line.startswith(b"READY"):
            raise BenchError(f"{name} failed to start:\n{child.log_tail()}")
        return child, line.decode().strip()

    async def stop(self, child: Child, timeout: float = 15.0) -> None:
        proc = child.proc
        if proc.returncode is None:
            if proc.stdin is not None:
                with contextlib.suppress(Exception):
                    proc.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)  # in case it was paused
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if child in self.started:
            self.started.remove(child)

    async def stop_all(self) -> None:
        # Brokers first, together, the stack (NATS) last, so brokers stop against a live
        # server. A broker logs `broker_stopped` within a second of SIGTERM, with every
        # message acknowledged; `orcon broker` then sits in `nc.drain()` for up to 30 s
        # (see docs/bench.md, "Profile", finding 4), so it gets 5 s before SIGKILL.
        rest = [c for c in self.started if c.name != "stack"]
        await asyncio.shield(asyncio.gather(*(self.stop(c, timeout=5.0) for c in rest)))
        for child in list(self.started):
            await asyncio.shield(self.stop(child))


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM in MiB, and CPU seconds (user + system) of a child."""
    out: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0]) / 1024
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


# ---- observing deliveries ---------------------------------------------------------------


class Watcher:
    """A core-NATS subscription (broker credentials) on delivery subjects: it sees each
    delivery the moment JetStream stores it, without acknowledging or consuming it.
    Counts distinct `Nats-Msg-Id`s (a broker's retry is counted once)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.last = 0.0
        self.first = 0.0
        self.prefix = ""
        self.target = 0
        self.done = asyncio.Event()

    def expect(self, target: int, prefix: str = "") -> None:
        self.seen.clear()
        self.target, self.prefix, self.first, self.last = target, prefix, 0.0, 0.0
        self.done.clear()

    async def on_msg(self, msg: Msg) -> None:
        key = (msg.headers or {}).get("Nats-Msg-Id", "")
        if not key.startswith(self.prefix) or key in self.seen:
            return
        now = time.perf_counter()
        self.seen.add(key)
        self.first = self.first or now
        self.last = now
        if len(self.seen) >= self.target:
            self.done.set()

    async def wait(self, timeout: float, what: str) -> None:
        try:
            await asyncio.wait_for(self.done.wait(), timeout)
        except TimeoutError:
            raise BenchError(f"{what}: {len(self.seen)} of {self.target} deliveries "
                             f"within {timeout:.0f} s") from None


# ---- load -------------------------------------------------------------------------------

Sealed = list[tuple[str, bytes]]  # (message id, encoded envelope)


def preseal(client: AgencyClient, body: schemas.Body, to: Sequence[str], n: int,
            category: schemas.Category = schemas.Category.ROUTES) -> Sealed:
    """Seal and sign `n` distinct messages before any timing starts."""
    now = client.clock()
    recipients = [r for a in to for r in client.directory.recipients_for(a, now)]
    body_bytes = schemas.encode(body)
    restrictions = schemas.Restrictions(
        purposes=[schemas.Purpose.SMUGGLING_OF_MIGRANTS, schemas.Purpose.TRAFFICKING_IN_PERSONS],
        no_onward_dissemination=True,
    )
    out: Sealed = []
    for _ in range(n):
        header = client.draft(body, category=category, level=schemas.Level.RESTRICTED,
                              restrictions=restrictions, to=to)
        env = seal(schemas.encode(header), body_bytes, recipients, client.identity)
        out.append((header.id, schemas.encode_envelope(env)))
    return out


async def submit_all(js: JetStreamContext, sealed: Sealed, window: int = 256) -> None:
    """JetStream-publish every envelope, `window` publish acknowledgements in flight."""
    subject = s.submit(SENDER)
    for i in range(0, len(sealed), window):
        await asyncio.gather(*(
            js.publish(subject, data, headers={"Nats-Msg-Id": mid})
            for mid, data in sealed[i:i + window]
        ))


async def receive_loop(client: AgencyClient, n: int, done_at: dict[str, float],
                       timeout: float) -> float:
    """The recipient: fetch own deliveries, verify + open each, acknowledge. Records the
    time each message id was opened; returns the seconds spent opening."""
    sub = await client.js.pull_subscribe_bind(s.inbox_consumer(client.agency),
                                              s.DELIVER_STREAM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    opening = 0.0
    while len(done_at) < n and loop.time() < deadline:
        try:
            msgs = await sub.fetch(256, timeout=0.5)
        except (TimeoutError, NatsTimeoutError):
            continue
        for m in msgs:
            t = time.perf_counter()
            got = client.open_delivery(m.data)
            now = time.perf_counter()
            opening += now - t
            if isinstance(got, Received):
                done_at[got.header.id] = now
            elif got is not None:
                raise BenchError(f"the recipient rejected a delivery: {got.reason}")
            await m.ack()
    return opening


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


@dataclass
class Live:
    """Connections of one running stack, and the helpers that use them."""

    conn: Connection
    admin: NATS
    sender: AgencyClient
    watcher: Watcher
    clients: dict[str, AgencyClient] = field(default_factory=dict)
    others: dict[str, int] = field(default_factory=dict)  # name -> pid, for CPU accounting

    async def client(self, agency: str) -> AgencyClient:
        if agency not in self.clients:
            self.clients[agency] = await local_client(self.conn, agency)
        return self.clients[agency]

    async def close(self) -> None:
        for c in [*self.clients.values(), self.sender]:
            await c.close()


async def _quiet(_: Exception) -> None:
    """nats-py prints every connection error; the bench reports its own."""


async def local_client(conn: Connection, agency: str) -> AgencyClient:
    """An AgencyClient whose directory is read from the stack's (root-signed) file, so
    it needs no broker to answer a directory request."""
    creds = conn.credentials(agency)
    assert creds.key is not None
    identity = load_identity(Path(creds.key), conn.passphrase())
    directory = Directory.load(Path(conn.directory).read_bytes(),
                               bytes.fromhex(conn.root_public))
    nc = await connect_nats(conn, agency, creds.nkey, error_cb=_quiet)
    return AgencyClient(nc, identity, directory)


class Arrivals:
    """Counts messages on a subject until `n` have come, and notes when the last did."""

    def __init__(self, n: int) -> None:
        self.n, self.got, self.last = n, 0, 0.0
        self.done = asyncio.Event()

    async def on_msg(self, _: Msg) -> None:
        self.got += 1
        if self.got >= self.n:
            self.last = time.perf_counter()
            self.done.set()

    async def subscribe(self, nc: NATS, subject: str) -> Subscription:
        return await nc.subscribe(subject, cb=self.on_msg, pending_msgs_limit=self.n + 10,
                                  pending_bytes_limit=(self.n + 10) * 2 * PAYLOAD)


async def broker_dial(conn: Connection, label: str) -> NATS:
    """A connection with the brokers' credential (it may read every delivery), through
    the one dial (transport.connection.connect_nats), with room for a flood."""
    assert conn.broker_nkey is not None
    return await connect_nats(conn, BROKER_NAME, conn.broker_nkey, service=True, label=label,
                              pending_size=256 * 1024 * 1024, error_cb=_quiet)


async def pubsub(admin: NATS, conn: Connection, n: int) -> float:
    """Plain nats-py: one connection publishes `n` 1 KB messages, another receives."""
    sink = await broker_dial(conn, "bench-sink")
    try:
        arrivals = Arrivals(n)
        await arrivals.subscribe(sink, "bench.raw")
        await sink.flush()
        data = os.urandom(PAYLOAD)
        t0 = time.perf_counter()
        for _ in range(n):
            await admin.publish("bench.raw", data)
        await admin.flush()
        await asyncio.wait_for(arrivals.done.wait(), 120)
        return n / (arrivals.last - t0)
    except TimeoutError:
        raise BenchError("plain publish -> subscribe did not complete") from None
    finally:
        await sink.close()


async def relay(children: Children, admin: NATS, data_dir: Path, n: int) -> float:
    """Publish `n` 1 KB messages into the relay process, count them out the other side."""
    child, _ = await children.start("relay", ["-m", "bench.proc", "relay", str(data_dir),
                                              "bench.relay.in", "bench.relay.out"], ready=True)
    try:
        arrivals = Arrivals(n)
        sub = await arrivals.subscribe(admin, "bench.relay.out")
        await admin.flush()
        data = os.urandom(PAYLOAD)
        t0 = time.perf_counter()
        for _ in range(n):
            await admin.publish("bench.relay.in", data)
        await admin.flush()
        try:
            await asyncio.wait_for(arrivals.done.wait(), 120)
        except TimeoutError:
            raise BenchError(f"relay: {arrivals.got} of {n} messages came back") from None
        await sub.unsubscribe()
        return n / (arrivals.last - t0)
    finally:
        await children.stop(child)


async def js_relay(children: Children, admin: NATS, data_dir: Path, n: int) -> float:
    """A backlog of `n` 1 KB messages in a JetStream work queue, drained by the JetStream
    relay process into a second stream: the ceiling of one Python JetStream hop."""
    from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamConfig

    js = admin.jetstream()
    await js.add_stream(StreamConfig(name="BENCHIN", subjects=["bench.jsin"],
                                     retention=RetentionPolicy.WORK_QUEUE))
    await js.add_stream(StreamConfig(name="BENCHOUT", subjects=["bench.jsout"]))
    await js.add_consumer("BENCHIN", ConsumerConfig(durable_name="relay",
                                                    ack_policy=AckPolicy.EXPLICIT,
                                                    max_ack_pending=20_000))
    data = os.urandom(PAYLOAD)
    for i in range(0, n, 256):
        await asyncio.gather(*(js.publish("bench.jsin", data) for _ in range(min(256, n - i))))
    arrivals = Arrivals(n)
    sub = await arrivals.subscribe(admin, "bench.jsout")
    await admin.flush()
    child, _ = await children.start("jsrelay", ["-m", "bench.proc", "jsrelay", str(data_dir),
                                                "BENCHIN", "bench.jsout"], ready=True)
    t0 = time.perf_counter()
    try:
        try:
            await asyncio.wait_for(arrivals.done.wait(), 300)
        except TimeoutError:
            raise BenchError(
                f"JetStream relay: {arrivals.got} of {n} messages came back") from None
        return n / (arrivals.last - t0)
    finally:
        await sub.unsubscribe()
        await children.stop(child)
        for name in ("BENCHIN", "BENCHOUT"):
            with contextlib.suppress(Exception):
                await js.delete_stream(name)


async def audit_end_to_end(admin: NATS, n: int, per_message: int = 2) -> dict[str, float]:
    """`n` audit events, `per_message` to a message as a broker sends them (a 1-recipient
    routing: submitted + delivered), published to AUDITIN with acknowledgments (a
    window of 256 messages in flight, as a busy broker has); timed until the sequencer
    has appended the last one to AUDIT. The sequencer's own CPU is measured over the
    same interval."""
    from broker.audit.events import AuditEvent
    from broker.audit.sequencer import encode_events, event_with_id
    from schemas.events import EventType
    from transport.jspub import AckPublisher

    js = admin.jetstream()
    base = (await js.stream_info(s.AUDIT_STREAM)).state.last_seq or 0
    pub = AckPublisher(admin)
    await pub.start()
    tag = secrets.token_hex(4)
    now = datetime.now(UTC)
    batches = [encode_events([
        event_with_id(AuditEvent(type=EventType.SUBMITTED, at=now, broker="bench",
                                 actor=SENDER, message_id=f"{i:026d}",
                                 details={"kind": "report"}), f"bench:{tag}:{i}:{j}")
        for j in range(per_message)]) for i in range(n // per_message)]
    total = len(batches) * per_message
    t0 = time.perf_counter()
    window: list[asyncio.Future[None]] = []
    for i, batch in enumerate(batches):
        window.append(await pub.publish(s.AUDIT_IN_SUBJECT, batch, f"bench:{tag}:{i}"))
        if len(window) >= 256:
            await pub.wait(window)
            window = []
    await pub.wait(window)
    deadline = time.perf_counter() + 300
    while True:
        last = (await js.stream_info(s.AUDIT_STREAM)).state.last_seq or 0
        if last - base >= total:
            break
        if time.perf_counter() > deadline:
            raise BenchError(f"audit end to end: {last - base} of {total} appended")
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - t0
    pub.close()
    return {"appends_per_s": total / elapsed, "entries": float(total)}


async def start_broker(children: Children, data_dir: Path, js: JetStreamContext,
                       broker_id: str, expect_waiting: int) -> Child:
    args = ["-m", "clients.cli.main", "broker", "--data-dir", str(data_dir), "--id", broker_id]
    profile = os.environ.get("ORCON_BENCH_PROFILE")
    if profile:  # a directory: each broker runs under pyinstrument, report written on exit
        Path(profile).mkdir(parents=True, exist_ok=True)
        out = Path(profile).resolve() / f"{broker_id}"
        args = ["-m", "pyinstrument", "-r", "text", "-o", f"{out}.txt", *args]
    child, _ = await children.start(broker_id, args, ready=False)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while loop.time() < deadline:
        if child.proc.returncode is not None:
            raise BenchError(f"{broker_id} exited:\n{child.log_tail()}")
        # Every broker keeps a pull request on each agency's submit consumer.
        infos = await js.consumers_info(s.SUBMIT_STREAM)
        if infos and min(i.num_waiting or 0 for i in infos) >= expect_waiting:
            return child
        await asyncio.sleep(0.1)
    raise BenchError(f"{broker_id} did not start fetching within 60 s:\n{child.log_tail()}")


async def drain(live: Live, brokers: Sequence[Child], sealed: Sealed, recipient: str,
                timeout: float) -> dict[str, float]:
    """Pause the brokers (SIGSTOP), queue every pre-sealed envelope in SUBMIT, resume
    them and time until the last delivery is stored: the brokers' own capacity, without
    the load generator in the loop."""
    for b in brokers:
        os.kill(b.pid, signal.SIGSTOP)
    try:
        await submit_all(live.sender.js, sealed)
        live.watcher.expect(len(sealed), prefix="")
        cpu0 = sum(proc_status(b.pid).get("cpu_s", 0.0) for b in brokers)
        other0 = {k: proc_status(pid).get("cpu_s", 0.0) for k, pid in live.others.items()}
        own0 = time.process_time()
    finally:
        t0 = time.perf_counter()
        for b in brokers:
            os.kill(b.pid, signal.SIGCONT)
    await live.watcher.wait(timeout, f"routing to {recipient}")
    elapsed = live.watcher.last - t0
    cpu = sum(proc_status(b.pid).get("cpu_s", 0.0) for b in brokers) - cpu0
    n = len(sealed)
    out = {"per_s": n / elapsed, "cpu_us_per_msg": cpu / n * 1e6,
           "observer_cpu_us_per_msg": (time.process_time() - own0) / n * 1e6}
    for k, pid in live.others.items():
        out[f"{k}_cpu_us_per_msg"] = (proc_status(pid).get("cpu_s", 0.0) - other0[k]) / n * 1e6
    return out


async def whole_path(live: Live, recipient: str, sealed: Sealed,
                     timeout: float) -> dict[str, float]:
    """Live load: submit while the recipient fetches, verifies, opens and acknowledges."""
    client = await live.client(recipient)
    done_at: dict[str, float] = {}
    t0 = time.perf_counter()
    rx = asyncio.create_task(receive_loop(client, len(sealed), done_at, timeout))
    try:
        await submit_all(live.sender.js, sealed)
        opening = await rx
    finally:
        rx.cancel()
    if len(done_at) < len(sealed):
        raise BenchError(f"whole path: {len(done_at)} of {len(sealed)} opened in {timeout} s")
    elapsed = max(done_at.values()) - t0
    return {"per_s": len(sealed) / elapsed, "open_per_s": len(sealed) / opening}


async def paced(live: Live, recipient: str, sealed: Sealed, rate: float,
                timeout: float) -> dict[str, Any]:
    """Offer `rate` msg/s on an absolute schedule; latency runs from each message's
    scheduled send time (so a late generator cannot hide queueing) to the moment the
    recipient has it decrypted."""
    client = await live.client(recipient)
    done_at: dict[str, float] = {}
    planned: dict[str, float] = {}
    rx = asyncio.create_task(receive_loop(client, len(sealed), done_at,
                                          len(sealed) / rate + timeout))
    js, subject = live.sender.js, s.submit(SENDER)
    pending: set[asyncio.Future[Any]] = set()
    lag = 0.0
    try:
        await asyncio.sleep(0.2)  # the recipient's first pull request is in place
        t0 = time.perf_counter() + 0.05
        for i, (mid, data) in enumerate(sealed):
            at = t0 + i / rate
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lag = max(lag, time.perf_counter() - at)
            planned[mid] = at
            fut = asyncio.ensure_future(js.publish(subject, data, headers={"Nats-Msg-Id": mid}))
            pending.add(fut)
            fut.add_done_callback(pending.discard)
        if pending:
            await asyncio.gather(*pending)
        offered = len(sealed) / (max(planned.values()) - t0 + 1 / rate)
        await rx
    finally:
        rx.cancel()
    lat = sorted((done_at[m] - planned[m]) * 1e3 for m in planned if m in done_at)
    if len(lat) < len(sealed):
        raise BenchError(f"latency at {rate:g} msg/s: {len(lat)} of {len(sealed)} arrived")
    return {
        "p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95),
        "p99_ms": percentile(lat, 99), "max_ms": lat[-1], "mean_ms": statistics.fmean(lat),
        "messages": float(len(lat)), "offered_per_s": offered,
        "delivered_per_s": len(lat) / (max(done_at.values()) - min(planned.values())),
        "sender_max_lag_ms": lag * 1e3,
        # The distribution (`orcon bench --html` draws it): latency at every 2nd
        # percentile, 0 (fastest) to 100 (slowest).
        "percentiles_ms": [percentile(lat, q) for q in range(0, 101, 2)],
    }


async def fanout(live: Live, sealed: Sealed, recipients: int, timeout: float) -> dict[str, float]:
    """One alert at a time to every focal point: submit -> last of the deliveries stored."""
    times: list[float] = []
    for mid, data in sealed:
        # Delivery ids are "<sender>:<message id>:<header hash>:to:<recipient>".
        live.watcher.expect(recipients, prefix=f"{SENDER}:{mid}:")
        t0 = time.perf_counter()
        await live.sender.js.publish(s.submit(SENDER), data, headers={"Nats-Msg-Id": mid})
        await live.watcher.wait(timeout, f"fan-out of {mid}")
        times.append((live.watcher.last - t0) * 1e3)
        await asyncio.sleep(0.05)
    times.sort()
    return {"median_ms": statistics.median(times), "max_ms": times[-1],
            "min_ms": times[0], "runs": float(len(times))}


async def flood_fairness(live: Live, js: JetStreamContext, plan: Plan, victim_to: str,
                         flooder_id: str) -> dict[str, float]:
    """An honest agency's latency (SENDER, paced at FLOOD_RATE) idle, then while another
    agency floods `plan.flood_n` junk submissions queued ahead of it. The junk costs the
    broker real work: a well-formed envelope from the flooder whose signature does not
    verify (decode, limits, header validation, key lookup, signature check)."""
    n = max(50, int(FLOOD_RATE * plan.latency_s))
    report = report_1k()
    idle_msgs = preseal(live.sender, report, [victim_to], n)
    flood_msgs = preseal(live.sender, report, [victim_to], n)
    flooder = await live.client(flooder_id)
    env = schemas.decode_envelope(preseal(flooder, report, [victim_to], 1)[0][1])
    junk = schemas.encode_envelope(msgspec.structs.replace(env, signature=bytes(64)))
    # The fan-out alerts wait in every focal point's inbox: read them first, so the
    # recipient counts only this phase's messages.
    recipient = await live.client(victim_to)
    sub = await recipient.js.pull_subscribe_bind(s.inbox_consumer(victim_to), s.DELIVER_STREAM)
    while True:
        try:
            leftovers = await sub.fetch(256, timeout=0.5)
        except (TimeoutError, NatsTimeoutError):
            break
        for m in leftovers:
            await m.ack()
    await sub.unsubscribe()
    await asyncio.sleep(0.6)  # the last pull request has expired: it steals nothing
    idle = await paced(live, victim_to, idle_msgs, FLOOD_RATE, 60)
    subject = s.submit(flooder_id)
    t0 = time.perf_counter()
    for i in range(plan.flood_n):
        await flooder.nc.publish(subject, junk)
        if i % 1000 == 999:
            await flooder.nc.flush()
    await flooder.nc.flush()
    queued_s = time.perf_counter() - t0
    before = await queue_state(js)
    during = await paced(live, victim_to, flood_msgs, FLOOD_RATE, 120)
    after = await queue_state(js)
    # Until the flood has drained, so the next phase measures what it says.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 600
    while loop.time() < deadline:
        state = await queue_state(js)
        if state.pending + state.ack_pending == 0:
            break
        await asyncio.sleep(0.2)
    drained_s = time.perf_counter() - t0
    return {
        "idle_p99_ms": idle["p99_ms"], "victim_p99_ms": during["p99_ms"],
        "idle_p50_ms": idle["p50_ms"], "victim_p50_ms": during["p50_ms"],
        "idle_p95_ms": idle["p95_ms"], "victim_p95_ms": during["p95_ms"],
        "victim_messages": float(n), "flood_submissions": float(plan.flood_n),
        "flood_queued_s": queued_s, "flood_drained_s": drained_s,
        "junk_waiting_at_start": float(before.pending + before.ack_pending),
        "junk_waiting_at_end": float(after.pending + after.ack_pending),
    }


# ---- the run ---------------------------------------------------------------------------


async def run_live(plan: Plan, work: Path, progress: Callable[[str], None],
                   flood_only: bool = False) -> dict[str, Any]:
    """Start the stack, measure everything that needs NATS, stop everything.
    `flood_only`: one broker, a warm-up and the fairness phase, nothing else."""
    data_dir, fed_path = work / "stack", work / "federation.toml"
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    focal = write_federation(fed_path, plan.focal_points)
    children = Children(logs)
    live: Live | None = None
    admin: NATS | None = None
    out: dict[str, Any] = {}
    try:
        # The stack process and this one share one passphrase through the environment,
        # never through a file (broker.hosting.stack.dev_passphrase).
        os.environ.setdefault("ORCON_PASSPHRASE", secrets.token_urlsafe(24))
        progress(f"starting NATS and provisioning {len(focal) + 1} agencies")
        stack, _ = await children.start(
            "stack", ["-m", "bench.proc", "stack", str(data_dir), str(fed_path)],
            ready=True, timeout=180)
        conn = load_connection(data_dir)
        assert conn.broker_nkey is not None
        admin = await broker_dial(conn, "bench")
        watcher = Watcher()
        await admin.subscribe("orcon.deliver.>", cb=watcher.on_msg, pending_msgs_limit=10**6,
                              pending_bytes_limit=2**30)
        sender = await local_client(conn, SENDER)
        live = Live(conn, admin, sender, watcher)
        live.others["stack"] = stack.pid  # the audit sequencer's process
        with contextlib.suppress(OSError, ValueError, IndexError):
            # nats-server is forked from a worker thread of the stack process.
            kids = [pid for task in Path(f"/proc/{stack.pid}/task").iterdir()
                    for pid in (task / "children").read_text().split()]
            live.others["nats_server"] = int(kids[0])
        js = admin.jetstream()

        if flood_only:
            b1 = await start_broker(children, data_dir, js, "broker-1", 1)
            await drain(live, [b1], preseal(sender, report_1k(), [focal[0]], 200), focal[0], 60)
            progress(f"fairness: an honest agency's latency, idle and during a flood of "
                     f"{plan.flood_n:,} junk submissions from another")
            cpu0 = proc_status(b1.pid).get("cpu_s", 0.0)
            out["flood"] = await flood_fairness(live, js, plan, focal[4], focal[5])
            out["flood"]["broker_cpu_s"] = proc_status(b1.pid).get("cpu_s", 0.0) - cpu0
            return out

        progress("limits: plain publish/subscribe and the bare relay")
        out["nats_pubsub_msgs_per_s"] = await pubsub(admin, conn, plan.pubsub_n)
        out["relay_msgs_per_s"] = await relay(children, admin, data_dir, plan.relay_n)
        out["relay_js_msgs_per_s"] = await js_relay(children, admin, data_dir,
                                                     plan.routed_n * 2)

        progress("audit appends through NATS, end to end")
        stack0 = proc_status(stack.pid).get("cpu_s", 0.0)
        out["audit_e2e"] = await audit_end_to_end(admin, plan.audit_e2e_n)
        out["audit_e2e"]["sequencer_cpu_us_per_entry"] = (
            (proc_status(stack.pid).get("cpu_s", 0.0) - stack0)
            / out["audit_e2e"]["entries"] * 1e6)

        progress("sealing the load (not timed)")
        report = report_1k()
        r_drain, r_path = focal[0], focal[1]
        t = time.perf_counter()
        warm = preseal(sender, report, [r_drain], 100)
        warm2 = preseal(sender, report, [r_drain], 100)
        drain1 = preseal(sender, report, [r_drain], plan.routed_n)
        drain2 = preseal(sender, report, [r_drain], plan.routed_n)
        drain3 = preseal(sender, report, [r_drain], plan.routed_n)
        path = preseal(sender, report, [r_path], plan.secure_n)
        lat = {rate: preseal(sender, report, [focal[2 + k]], max(50, int(rate * plan.latency_s)))
               for k, rate in enumerate(plan.rates)}
        sealed_n = 200 + 3 * plan.routed_n + plan.secure_n + sum(len(v) for v in lat.values())
        out["seal1_in_load_ms"] = (time.perf_counter() - t) / sealed_n * 1e3
        t = time.perf_counter()
        alerts = preseal(sender, alert_body(), focal, plan.fanout_runs,
                         category=schemas.Category.GROUPS)
        out["fanout_seal_ms"] = (time.perf_counter() - t) / plan.fanout_runs * 1e3

        progress("one broker: warm-up and backlog drain")
        b1 = await start_broker(children, data_dir, js, "broker-1", 1)
        await drain(live, [b1], warm, r_drain, 60)
        one = await drain(live, [b1], drain1, r_drain, 300)
        out["secure_routed_per_s"] = one["per_s"]
        out["broker_cpu_us_per_msg"] = one["cpu_us_per_msg"]
        out["drain_1broker"] = one

        progress("whole path: submit -> route -> deliver -> open")
        whole = await whole_path(live, r_path, path, 300)
        out["secure_msgs_per_s"] = whole["per_s"]
        out["open_per_s_in_recipient"] = whole["open_per_s"]

        for rate, msgs in lat.items():
            progress(f"latency at {rate} msg/s")
            out[f"latency_{rate}"] = await paced(live, focal[2 + plan.rates.index(rate)], msgs,
                                                 rate, 60)

        progress(f"fan-out to {len(focal)} focal points")
        out["fanout"] = await fanout(live, alerts, len(focal), 60)

        progress(f"fairness: an honest agency's latency, idle and during a flood of "
                 f"{plan.flood_n:,} junk submissions from another")
        out["flood"] = await flood_fairness(live, js, plan, focal[4], focal[5])

        out["broker_1"] = proc_status(b1.pid)
        progress("two brokers: backlog drain")
        b2 = await start_broker(children, data_dir, js, "broker-2", 2)
        await drain(live, [b1, b2], warm2, r_drain, 60)
        two = await drain(live, [b1, b2], drain2, r_drain, 300)
        out["secure_routed_per_s_2brokers"] = two["per_s"]
        out["broker_cpu_us_per_msg_2brokers"] = two["cpu_us_per_msg"]
        out["drain_2brokers"] = two
        out["broker_2"] = proc_status(b2.pid)
        await children.stop(b2, timeout=5.0)
        # One broker again, so that the scaling ratio compares against the mean of a
        # one-broker drain before and after the two-broker one (load drifts on a shared
        # machine).
        progress("one broker again: backlog drain")
        again = await drain(live, [b1], drain3, r_drain, 300)
        out["secure_routed_per_s_1broker_runs"] = [one["per_s"], again["per_s"]]
        out["secure_routed_per_s_1broker_mean"] = (one["per_s"] + again["per_s"]) / 2
        out["broker_1_end"] = proc_status(b1.pid)
        out["counts"] = {"routed": plan.routed_n, "secure": plan.secure_n,
                         "relay": plan.relay_n, "pubsub": plan.pubsub_n,
                         "focal_points": len(focal)}
        return out
    finally:
        progress("stopping brokers, relay and NATS")
        if live is not None:
            await asyncio.shield(live.close())
        if admin is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(admin.close())
        await children.stop_all()
