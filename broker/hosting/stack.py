"""A complete development federation on one machine: keys, NATS credentials, the
embedded nats-server and N brokers. Used by `orcon dev`, `orcon demo`, `orcon bench`
and the integration tests, so they all exercise the same real components.

Data directory layout:
    nats/            nats.conf, jetstream/ (file storage), nats-server.log
    creds/NAME.nk    NATS nkey seeds (0600)
    keys/AGENCY.key  orcon identities, encrypted at rest (0600)
    keys/root.key    the federation root key (a real federation keeps it offline)
    directory.bin    the key directory, every entry signed by the root
    (no passphrase: it stays in memory and in ORCON_PASSPHRASE, never on disk)
    tls/             development CA and server certificate (broker/hosting/tls.py), keys 0600
    connection.json  what clients need to connect (transport/connection.py)
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import structlog
from nats.aio.client import Client as NATS

from broker.audit.sequencer import AuditSequencer
from broker.hosting import provision
from broker.hosting import tls as devtls
from broker.hosting.natsserver import EmbeddedNats
from broker.hosting.node import (
    ACK_WATCHER_NAME,
    OPERATOR_NAME,
    AckWatcherNode,
    BrokerNode,
    SequencerNode,
    ServiceNode,
)

# Re-exported: callers know these names from here.
from broker.hosting.node import BROKER_NAME as BROKER_NAME
from broker.hosting.node import SEQUENCER_NAME as SEQUENCER_NAME
from broker.hosting.node import Running as Running
from broker.metrics import Metrics
from broker.routing import streams
from broker.routing.acks import URGENT_ACK_TIMEOUT, AckWatcher
from broker.routing.keysync import DirectoryWatcher, publish_directory
from broker.routing.policysync import RegistryWatcher, sign_and_publish_registry
from broker.routing.service import Broker
from keys.directory import Directory, FederationRoot
from keys.identity import Identity
from keys.keyfile import atomic_write, load_identity, save_identity
from policies.engine import PolicyEngine
from policies.federation import Federation, load_federation
from schemas.clock import Clock, utcnow
from transport.connection import AgencyCredentials, Connection, write_connection

log = structlog.get_logger("orcon.stack")

LOG_KEY_NAME = "ORCON-LOG"


PASSPHRASE_ENV = "ORCON_PASSPHRASE"


def dev_passphrase(passphrase: str | None = None) -> str:
    """The passphrase that encrypts a development stack's keys, held in memory only:
    `passphrase`, else ORCON_PASSPHRASE, else a random one for this process alone (a
    throwaway data directory: tests, `orcon demo`, `orcon bench`).

    Never written to disk: a passphrase stored beside the keys it protects would make
    their encryption at rest pointless. Other processes (`orcon send`, `orcon inbox`)
    read ORCON_PASSPHRASE from their own environment."""
    return passphrase or os.environ.get(PASSPHRASE_ENV) or secrets.token_urlsafe(24)


def provision_federation(
    data_dir: Path,
    federation_path: Path,
    *,
    now: datetime,
    suites: tuple[str, ...] = ("x25519",),
    fast_kdf: bool = False,
    passphrase: str | None = None,
) -> Connection:
    """Idempotent: existing keys and credentials are kept, missing ones are created
    (dated `now`). Returns the connection description (without the URL, which the
    server decides). Keys are encrypted with `passphrase` (default: `dev_passphrase()`)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fed = load_federation(federation_path)
    fed_copy = data_dir / "federation.toml"
    if federation_path.resolve() != fed_copy.resolve():
        shutil.copyfile(federation_path, fed_copy)
    passphrase = dev_passphrase(passphrase)
    keydir = data_dir / "keys"
    keydir.mkdir(exist_ok=True, mode=0o700)

    root_path = keydir / "root.key"
    if root_path.exists():
        root = FederationRoot.load(root_path, passphrase)
    else:
        root = FederationRoot.generate(now)
        root.save(root_path, passphrase, fast=fast_kdf)
    directory = Directory(root.public_bytes)
    dir_path = data_dir / "directory.bin"
    if dir_path.exists():
        directory = Directory.load(dir_path.read_bytes(), root.public_bytes)

    creds: dict[str, AgencyCredentials] = {}
    for agency in fed.agencies:
        key_path = keydir / f"{agency.id}.key"
        if not key_path.exists():
            save_identity(Identity.generate(agency.id, suites=suites, now=now), key_path,
                          passphrase, fast=fast_kdf)
        if agency.id not in directory.agencies():
            # Unlocking a key file costs ~0.2 s (Argon2id): only for entries to sign.
            ident = load_identity(key_path, passphrase)
            entry = ident.directory_entry(
                country=agency.country,
                roles=[str(r) for r in agency.roles],
                clearance=str(agency.clearance),
                now=now,
            )
            directory.add(root.sign_entry(entry))
    # The audit log's signing key is in the directory too, so auditors can verify heads
    # with nothing but the pinned root key.
    log_path = keydir / f"{LOG_KEY_NAME}.key"
    if not log_path.exists():
        save_identity(Identity.generate(LOG_KEY_NAME, now=now), log_path, passphrase,
                      fast=fast_kdf)
    log_ident = load_identity(log_path, passphrase)
    if LOG_KEY_NAME not in directory.agencies():
        directory.add(root.sign_entry(log_ident.directory_entry(
            country="XX", roles=["log"], clearance="UNCLASSIFIED", now=now)))
    # Whole or not at all: a truncated directory would stop every later start.
    atomic_write(dir_path, directory.dump(), mode=0o644)

    for p in provision.provision(data_dir / "creds", members(fed)):
        if p.role in provision.SERVICE_ROLES:
            continue
        key = keydir / f"{p.name}.key"
        creds[p.name] = AgencyCredentials(
            nkey=str(p.seed_path), key=str(key) if p.role == "agency" else None
        )
    return Connection(
        url="",
        root_public=root.public_bytes.hex(),
        federation=str(fed_copy),
        directory=str(dir_path),
        agencies=creds,
        broker_nkey=str(data_dir / "creds" / f"{BROKER_NAME}.nk"),
        operator_nkey=str(data_dir / "creds" / f"{OPERATOR_NAME}.nk"),
        log_public=log_ident.signing_public_bytes.hex(),
    )


class DevStack(Running):
    """`async with DevStack(dir, federation) as stack:` runs NATS and brokers."""

    def __init__(
        self,
        data_dir: Path,
        federation_path: Path,
        *,
        brokers: int = 1,
        port: int | None = None,
        clock: Clock = utcnow,
        fast_kdf: bool = False,
        suites: tuple[str, ...] = ("x25519",),
        head_interval: float = 1.0,
        ack_wait_s: float = 30.0,
        tls: bool = False,
        max_message_bytes: int | None = None,
        urgent_ack_timeout: timedelta = URGENT_ACK_TIMEOUT,
        limits: provision.AccountLimits = provision.DEFAULT_LIMITS,
        max_pending_submissions: int = streams.MAX_PENDING_SUBMISSIONS,
        passphrase: str | None = None,
        throwaway: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir)
        # A store nobody reads after stop (a test's temporary directory): the services
        # still stop gracefully, the server is then killed instead of flushing its
        # streams to disk, which takes nats-server ~0.5 s.
        self.throwaway = throwaway
        # Urgent messages not acknowledged within this are re-notified (AckWatcher).
        self.urgent_ack_timeout = urgent_ack_timeout
        self.federation_path = Path(federation_path)
        self.n_brokers = brokers
        self.port = port
        self.clock = clock
        self.fast_kdf = fast_kdf
        self.suites = suites
        self.head_interval = head_interval
        # How long JetStream waits for an ack before redelivering (fault tests shorten it).
        self.ack_wait_s = ack_wait_s
        # TLS with the development CA; `orcon dev` turns it on. Off by default for the
        # throwaway stacks of tests, `orcon demo` and `orcon bench` (every dial follows
        # connection.json, so either works: tests/ops/test_tls.py runs with it on).
        self.tls = tls
        self.max_message_bytes = max_message_bytes
        # Per-agency quotas (connections, subscriptions, payload) on each agency account.
        self.limits = limits
        self.max_pending_submissions = max_pending_submissions
        # In memory only (see dev_passphrase).
        self._passphrase = dev_passphrase(passphrase)
        self.tls_files: devtls.TlsFiles | None = None
        # One registry per process, shared by its brokers: Prometheus scrapes a process,
        # and counters of several brokers in it add up (broker/hosting/health.py serves it).
        self.metrics = Metrics()
        # The assembly `orcon service` uses too, made once the server's URL is known.
        self.services: ServiceNode | None = None
        self.server: EmbeddedNats | None = None
        self.connection: Connection | None = None
        self.brokers: list[Broker] = []
        self._broker_ncs: list[NATS] = []
        self.audit: AuditSequencer | None = None
        self.keysync: DirectoryWatcher | None = None
        self.registry: RegistryWatcher | None = None
        self.ack_watcher: AckWatcher | None = None
        self.federation: Federation | None = None
        self.sequencer: SequencerNode | None = None
        self.node: BrokerNode | None = None
        self.ack_node: AckWatcherNode | None = None

    async def start(self) -> None:
        conn = await asyncio.to_thread(
            provision_federation, self.data_dir, self.federation_path, now=self.clock(),
            suites=self.suites, fast_kdf=self.fast_kdf, passphrase=self._passphrase,
        )
        self.federation = load_federation(Path(conn.federation))
        principals = provision.provision(self.data_dir / "creds", members(self.federation))
        self.server = EmbeddedNats(self.data_dir / "nats", port=self.port)
        if self.tls:
            self.tls_files = await asyncio.to_thread(devtls.ensure_dev_ca, self.data_dir / "tls",
                                                     now=self.clock())
        config = provision.server_config(
            host=self.server.host,
            port=self.server.port,
            store_dir=self.data_dir / "nats" / "jetstream",
            principals=principals,
            tls=self.tls_files,
            limits=self.limits,
        )
        # Started on the event loop's thread (normally the main thread), so the server
        # dies with orcon even on SIGKILL (see EmbeddedNats); it is ready in ~0.1 s.
        self.server.start(config)
        self.connection = msgspec.structs.replace(
            conn, url=self.url, ca=str(self.tls_files.ca) if self.tls_files else None
        )
        write_connection(self.data_dir, self.connection)

        # The services of broker/hosting/node.py, in their production order, each with its own
        # credential: the same assembly as `orcon service --role ...`, in one process.
        self.services = ServiceNode(self.connection, self.data_dir / "creds",
                                    clock=self.clock, metrics=self.metrics)
        passphrase = self.passphrase()
        log_identity = load_identity(self.data_dir / "keys" / f"{LOG_KEY_NAME}.key", passphrase)
        seq_nc = await self.sequencer_connection("audit")
        self._broker_ncs.append(seq_nc)
        self.sequencer = self.services.sequencer(
            seq_nc, log_identity, [a.id for a in self.federation.agencies],
            ack_wait_s=self.ack_wait_s, max_pending_submissions=self.max_pending_submissions,
            head_interval=self.head_interval)
        await self.sequencer.start()
        self.audit = self.sequencer.audit
        # The operator's first publication; a development stack keeps its root online.
        op = await self.operator_connection("setup")
        try:
            await publish_directory(op, Path(conn.directory).read_bytes(),
                                    bytes.fromhex(conn.root_public))
            await sign_and_publish_registry(op, self.root(), Path(conn.federation).read_bytes(),
                                            now=self.clock())
        finally:
            await op.close()
        settings = ({} if self.max_message_bytes is None
                    else {"max_message_bytes": self.max_message_bytes})
        self.node = self.services.brokers(self.federation, self.directory(), **settings)
        await self.node.start([f"broker-{i + 1}" for i in range(self.n_brokers)])
        self.keysync, self.registry = self.node.keysync, self.node.registry
        self.brokers = self.node.brokers
        ack_nc = await self.services.dial("ack-watcher", "ack-watch")
        self._broker_ncs.append(ack_nc)
        self.ack_node = self.services.ack_watcher(ack_nc, timeout=self.urgent_ack_timeout)
        await self.ack_node.start()
        self.ack_watcher = self.ack_node.watcher

    def passphrase(self) -> str:
        return self._passphrase

    @property
    def url(self) -> str:
        """The client URL: `tls://` when TLS is on (nats-py then insists on TLS)."""
        assert self.server is not None
        scheme = "tls" if self.tls else "nats"
        return f"{scheme}://{self.server.host}:{self.server.port}"

    async def broker_connection(self, label: str) -> NATS:
        """A connection in the services account with the brokers' credentials."""
        assert self.services is not None
        return await self.services.dial("broker", label)

    async def sequencer_connection(self, label: str) -> NATS:
        """A connection with the audit sequencer's credentials (appends to the log)."""
        assert self.services is not None
        return await self.services.dial("sequencer", label)

    async def operator_connection(self, label: str) -> NATS:
        """A connection with the operator's credentials (writes the directory and
        registry buckets)."""
        assert self.services is not None
        return await self.services.dial("operator", label)

    def engine(self) -> PolicyEngine:
        assert self.federation is not None
        return PolicyEngine(self.federation)

    def directory(self) -> Directory:
        assert self.connection is not None
        return Directory.load(
            Path(self.connection.directory).read_bytes(), bytes.fromhex(self.connection.root_public)
        )

    async def publish_directory(self) -> int:
        """Push DATA/directory.bin (after `orcon keys rotate/revoke`) to every broker."""
        assert self.connection is not None
        nc = await self.operator_connection("publish-directory")
        try:
            return await publish_directory(nc, Path(self.connection.directory).read_bytes(),
                                           bytes.fromhex(self.connection.root_public))
        finally:
            await nc.close()

    async def publish_registry(self, federation_toml: bytes) -> int:
        """Validate, sign with the root and push a new federation registry to every
        broker."""
        nc = await self.operator_connection("publish-registry")
        try:
            revision, _ = await sign_and_publish_registry(nc, self.root(), federation_toml,
                                                          now=self.clock())
            return revision
        finally:
            await nc.close()

    def root(self) -> FederationRoot:
        return FederationRoot.load(self.data_dir / "keys" / "root.key", self.passphrase())

    async def add_broker(self, broker_id: str) -> Broker:
        assert self.node is not None
        return await self.node.add_broker(broker_id)

    async def stop(self) -> None:
        if self.ack_node is not None:
            await self.ack_node.stop()
            self.ack_node = self.ack_watcher = None
        if self.node is not None:
            await self.node.stop()
            self.node = self.keysync = self.registry = None
            self.brokers = []
        if self.sequencer is not None:
            await self.sequencer.stop()
            self.sequencer = self.audit = None
        for nc in self._broker_ncs:
            if not nc.is_closed:
                await nc.close()
        self._broker_ncs.clear()
        if self.server is not None:
            await asyncio.to_thread(self.server.kill if self.throwaway else self.server.stop)
            self.server = None


def members(federation: Federation) -> list[tuple[str, provision.Role]]:
    """Every NATS principal of a federation: one user per service role (the services
    account) and one per agency (its own account) or auditor."""
    out: list[tuple[str, provision.Role]] = [(BROKER_NAME, "broker"),
                                              (SEQUENCER_NAME, "sequencer"),
                                              (ACK_WATCHER_NAME, "ack-watcher"),
                                              (OPERATOR_NAME, "operator")]
    for a in federation.agencies:
        out.append((a.id, "auditor" if a.is_auditor else "agency"))
    return out


def default_federation() -> Path:
    """The sample federation shipped in deploy/ (the repository checkout)."""
    return Path(__file__).resolve().parents[2] / "deploy" / "federation.toml"
