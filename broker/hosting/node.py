"""One assembly of each long-running service, used by `orcon dev` (all of them in one
process, for one machine), by `orcon service --role ROLE` (one process each, as the
systemd units and tests/ops/ run them) and by the cluster tooling. Whatever the
setting, a service is the same objects wired the same way by a `ServiceNode`: one
connection policy (each role dials NATS with its own credential through
transport.connection.connect_nats), one clock, one metrics registry:

    sequencer    creates streams, consumers and buckets, then appends the audit log
                 and signs its heads (the only writer of the log)
    broker       routing (broker/routing/service.py) plus the live key directory and registry
                 watchers that feed it
    ack-watcher  re-notifies urgent messages not acknowledged in time
    operator     not a service: the credential of the operator's commands (publish the
                 directory and the registry, add an agency's consumers)

Start order on a fresh federation: sequencer (it creates what the others bind to),
the operator's first publication of the directory and registry, then brokers and the
watcher. Each waits (bounded) for what it binds to, so a unit started early retries
rather than failing for good.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError

from broker.audit.sequencer import AuditSequencer
from broker.metrics import Metrics
from broker.routing import streams
from broker.routing.acks import URGENT_ACK_TIMEOUT, AckWatcher, watch_interval
from broker.routing.keysync import DIRECTORY_BUCKET, DirectoryWatcher
from broker.routing.policysync import REGISTRY_BUCKET, RegistryWatcher
from broker.routing.service import Broker, BrokerConfig
from keys.directory import Directory
from keys.identity import Identity
from policies.engine import PolicyEngine
from policies.federation import Federation
from schemas.clock import Clock, utcnow
from transport import subjects as s
from transport.connection import SERVICE, Connection, DialPolicy, connect_nats

log = structlog.get_logger("orcon.node")

ServiceRole = Literal["broker", "sequencer", "ack-watcher"]
SERVICE_ROLES: tuple[ServiceRole, ...] = ("broker", "sequencer", "ack-watcher")

BROKER_NAME = "orcon-broker"
# The audit sequencer's own user: the only principal that may append to the audit log.
SEQUENCER_NAME = "orcon-sequencer"
ACK_WATCHER_NAME = "orcon-ack-watcher"
OPERATOR_NAME = "orcon-operator"

# The NATS user (nkey file DATA/creds/<user>.nk) of each role.
ROLE_USER: dict[str, str] = {
    "broker": BROKER_NAME,
    "sequencer": SEQUENCER_NAME,
    "ack-watcher": ACK_WATCHER_NAME,
    "operator": OPERATOR_NAME,
}

class Running:
    """`async with` for anything with `start()` and `stop()`: a start that fails half-way
    still stops what it started."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


@dataclass
class ServiceNode:
    """What every service of one process shares, whoever assembles them (`orcon dev`,
    `orcon service`, the cluster tooling): one connection policy (each role dials with
    its own credential through transport.connection.connect_nats, the SERVICE policy,
    the TLS of connection.json), one clock and one metrics registry (Prometheus
    scrapes a process; the counters of several brokers in it add up)."""

    conn: Connection
    creds_dir: Path  # holds each role's nkey seed, `<user>.nk`
    servers: Sequence[str] | None = None  # default: every node of connection.json
    clock: Clock = utcnow
    metrics: Metrics = field(default_factory=Metrics)
    # A role's seed somewhere else than creds_dir (`orcon service --creds`).
    seeds: dict[str, Path] = field(default_factory=dict)
    policy: DialPolicy = SERVICE

    def seed(self, role: str) -> Path:
        return self.seeds.get(role) or self.creds_dir / f"{ROLE_USER[role]}.nk"

    async def dial(self, role: str, label: str, *, first: str | None = None,
                   **options: Any) -> NATS:
        """A connection as `role` (broker, sequencer, ack-watcher, operator); `first`
        (a URL) is tried first and the other nodes stay in the pool for reconnection."""
        servers = list(self.servers or self.conn.servers)
        if first is not None:
            servers = [first] + [u for u in servers if u != first]
            options.setdefault("dont_randomize", True)
        return await connect_nats(self.conn, ROLE_USER[role], self.seed(role), service=True,
                                  label=label, servers=servers, policy=self.policy, **options)

    def broker_config(self, broker_id: str, **settings: Any) -> BrokerConfig:
        return BrokerConfig(broker_id=broker_id, clock=self.clock, **settings)

    def sequencer(self, nc: NATS, log_identity: Identity, agencies: Sequence[str],
                  **options: Any) -> SequencerNode:
        return SequencerNode(nc, log_identity, agencies, clock=self.clock,
                             metrics=self.metrics, **options)

    def brokers(self, federation: Federation, directory: Directory, *,
                ready_timeout: float = 30.0, **settings: Any) -> BrokerNode:
        """The brokers' node; `settings` are BrokerConfig fields (max_message_bytes...)."""
        return BrokerNode(lambda label: self.dial("broker", label), federation, directory,
                          bytes.fromhex(self.conn.root_public),
                          config=lambda bid: self.broker_config(bid, **settings),
                          metrics=self.metrics, clock=self.clock, ready_timeout=ready_timeout)

    def ack_watcher(self, nc: NATS, **options: Any) -> AckWatcherNode:
        return AckWatcherNode(nc, clock=self.clock, **options)


async def until_ready(make: Callable[[], Awaitable[object]], what: str,
                      timeout: float) -> None:
    """Retry `make` until it succeeds or `timeout` passes (then its error is raised):
    a JetStream cluster answers only once it has a leader, a bucket exists only once
    the sequencer made it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await make()
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise
            log.info("waiting", what=what, error=type(exc).__name__)
            await asyncio.sleep(0.25)


async def ensure_federation_streams(
    nc: NATS, agencies: Sequence[str], *, replicas: int = 1, ack_wait_s: float = 30.0,
    max_pending_submissions: int = streams.MAX_PENDING_SUBMISSIONS,
    ready_timeout: float = 30.0, buckets: bool = True,
) -> None:
    """Streams, durable consumers and (with `buckets`) the key-value buckets of a
    federation, made sure of (idempotent; retried until JetStream answers)."""
    js = nc.jetstream()
    await until_ready(lambda: streams.ensure_streams(
        js, replicas=replicas, max_pending_submissions=max_pending_submissions),
        "streams", ready_timeout)
    await until_ready(lambda: streams.ensure_consumers(js, agencies, ack_wait_s=ack_wait_s),
                      "consumers", ready_timeout)
    if not buckets:
        return
    for name in (DIRECTORY_BUCKET, REGISTRY_BUCKET):
        await until_ready(lambda n=name: _bucket(js, n, replicas),  # type: ignore[misc]
                          name, ready_timeout)


async def _bucket(js: JetStreamContext, name: str, replicas: int) -> None:
    # Created with the streams' replicas (a hub bucket must survive a node), before the
    # operator's first write.
    try:
        await js.key_value(name)
    except BucketNotFoundError:
        await js.create_key_value(KeyValueConfig(
            bucket=name, history=16, storage=StorageType.FILE, replicas=replicas))


class SequencerNode(Running):
    """The sequencer's process: streams, durable consumers and key-value buckets made
    sure of (idempotent), then the audit sequencer."""

    def __init__(
        self, nc: NATS, log_identity: Identity, agencies: Sequence[str], *,
        replicas: int = 1, ack_wait_s: float = 30.0,
        max_pending_submissions: int = streams.MAX_PENDING_SUBMISSIONS,
        head_interval: float = 1.0, clock: Clock = utcnow, ready_timeout: float = 30.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.nc = nc
        self.agencies = list(agencies)
        self.replicas = replicas
        self.ack_wait_s = ack_wait_s
        self.max_pending_submissions = max_pending_submissions
        self.ready_timeout = ready_timeout
        self.metrics = metrics or Metrics()
        self.audit = AuditSequencer(nc, log_identity, interval=head_interval, clock=clock,
                                    metrics=self.metrics)
        self._started = False

    async def setup(self) -> None:
        await ensure_federation_streams(
            self.nc, self.agencies, replicas=self.replicas, ack_wait_s=self.ack_wait_s,
            max_pending_submissions=self.max_pending_submissions,
            ready_timeout=self.ready_timeout)

    async def start(self) -> None:
        await self.setup()
        await self.audit.start()
        self._started = True
        log.info("sequencer_started", size=self.audit.size)

    async def stop(self) -> None:
        if self._started:
            await self.audit.stop()
            self._started = False


class BrokerNode(Running):
    """Brokers (one per id, each on its own connection, sharing the submission
    consumer) and the watchers that keep their key directory and registry current."""

    def __init__(
        self, dial: Callable[[str], Awaitable[NATS]], federation: Federation,
        directory: Directory, root_public: bytes, *,
        config: Callable[[str], BrokerConfig], metrics: Metrics | None = None,
        clock: Clock = utcnow, ready_timeout: float = 30.0,
    ) -> None:
        self.dial = dial
        self.federation = federation
        self.initial_directory = directory
        self.root_public = root_public
        self.config = config
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.ready_timeout = ready_timeout
        # One engine for every broker of the node: the registry watcher reloads it, so a
        # broker added later runs the registry in force, not the one the node started
        # with (before the first broker too: the watcher's first apply reloads it).
        self.engine = PolicyEngine(federation)
        self.brokers: list[Broker] = []
        self.keysync: DirectoryWatcher | None = None
        self.registry: RegistryWatcher | None = None
        self._ncs: list[NATS] = []
        self.watch_nc: NATS | None = None

    async def start(self, broker_ids: Sequence[str] = ()) -> None:
        nc = await self.dial("keysync")
        self._ncs.append(nc)
        self.watch_nc = nc
        self.keysync = DirectoryWatcher(nc, self.initial_directory, self._directory_changed,
                                        clock=self.clock)
        # The buckets are the sequencer's to create: wait for them (bounded).
        await until_ready(self.keysync.start, DIRECTORY_BUCKET, self.ready_timeout)
        self.registry = RegistryWatcher(nc, lambda: [self.engine],
                                        self.root_public, clock=self.clock,
                                        before_reload=self._agencies_joining)
        await until_ready(self.registry.start, REGISTRY_BUCKET, self.ready_timeout)
        for broker_id in broker_ids:
            await self.add_broker(broker_id)

    async def _agencies_joining(self, federation: Federation) -> None:
        # An agency that joins a running federation (orcon policy add-agency) gets its
        # delivery consumers from the brokers, before any of them can route to it: the
        # operator's credential may create no consumer (broker/hosting/provision.py).
        assert self.watch_nc is not None
        running = {a.id for a in self.engine.federation.agencies}
        running |= {a.id for a in self.federation.agencies}
        joining = [a.id for a in federation.agencies if a.id not in running]
        await streams.ensure_delivery_consumers(self.watch_nc.jetstream(), joining)

    def _directory_changed(self, directory: Directory) -> None:
        for broker in self.brokers:
            broker.directory = directory

    async def add_broker(self, broker_id: str) -> Broker:
        nc = await self.dial(broker_id)
        self._ncs.append(nc)
        # The streams are the sequencer's to create; on a cluster a new replicated
        # stream answers only once it has a leader: wait for it (bounded).
        js = nc.jetstream()
        await until_ready(lambda: js.stream_info(s.SUBMIT_STREAM), s.SUBMIT_STREAM,
                          self.ready_timeout)
        current = self.keysync.current if self.keysync else self.initial_directory
        broker = Broker(nc, self.engine, current, self.config(broker_id),
                        metrics=self.metrics)
        await broker.start()
        self.brokers.append(broker)
        return broker

    async def stop(self) -> None:
        if self.keysync is not None:
            await self.keysync.stop()
            self.keysync = None
        if self.registry is not None:
            await self.registry.stop()
            self.registry = None
        for broker in self.brokers:
            await broker.stop()
        self.brokers.clear()
        for nc in self._ncs:
            if not nc.is_closed:
                # flush + close, not drain: drain would wait out nats-py's 30 s timeout
                # for a pending pull, and every ack is written by now.
                try:
                    await nc.flush(timeout=2)
                except Exception as exc:  # already disconnected: nothing left to flush
                    log.debug("flush_failed", error=type(exc).__name__)
                await nc.close()
        self._ncs.clear()


class AckWatcherNode(Running):
    """The acknowledgment watcher's process (one per federation)."""

    def __init__(self, nc: NATS, *, timeout: timedelta = URGENT_ACK_TIMEOUT,
                 clock: Clock = utcnow, ready_timeout: float = 30.0) -> None:
        self.nc = nc
        self.ready_timeout = ready_timeout
        self.watcher = AckWatcher(nc, clock=clock, timeout=timeout,
                                  interval=watch_interval(timeout))
        self._started = False

    async def start(self) -> None:
        await until_ready(self.watcher.start, "DELIVER stream", self.ready_timeout)
        self._started = True

    async def stop(self) -> None:
        if self._started:
            await self.watcher.stop()
            self._started = False
