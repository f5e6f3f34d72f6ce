"""A federation deployed as in production, on loopback: the configuration rendered by
`orcon deploy render`, a three-node hub and country leafnodes as separate nats-server
processes started from the rendered files, and every service as its own `orcon service`
process with its own credential. No DevStack: nothing here shares a process with the
services it tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from broker.hosting import operator
from broker.hosting.natsserver import EmbeddedNats, free_port, port_in_use
from broker.hosting.stack import LOG_KEY_NAME, provision_federation
from broker.hosting.topology import Plan, countries_of
from clients.sdk.client import AgencyClient
from keys.directory import FederationRoot
from policies.federation import load_federation
from schemas.clock import utcnow
from transport.connection import Connection, load_connection, write_connection

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "deploy" / "federation.toml"
ORCON = Path(sys.executable).parent / "orcon"


def _conf_text(path: Path) -> str:
    # The rendered files start with a comment line: nats-server reads them as they are.
    return path.read_text()


@dataclass
class DeployedFederation:
    root: Path
    countries: tuple[str, ...] = ("TH", "KH")
    passphrase: str = "a test passphrase, never on disk"
    out: Path = field(init=False)
    plan: Plan = field(init=False)
    hub: dict[str, EmbeddedNats] = field(default_factory=dict)
    leaves: dict[str, EmbeddedNats] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    clients: list[AgencyClient] = field(default_factory=list)
    # Each service's `--http` port (health, readiness and Prometheus metrics).
    http: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out = self.root / "deploy"

    # ---- rendering and servers -------------------------------------------------------

    def prepare(self) -> None:
        keys = self.root / "keys"
        base = provision_federation(keys, SAMPLE, now=utcnow(), fast_kdf=True,
                                    passphrase=self.passphrase)
        write_connection(keys, base)  # what `--keys` reads (no URL: render supplies them)
        fed = load_federation(SAMPLE)
        self.plan = Plan.loopback(countries_of(fed), self.root / "run")
        subprocess.run(  # the command an operator runs, on this plan
            [str(ORCON), "deploy", "render", str(self.out), "--federation", str(SAMPLE),
             "--plan", str(self._plan_file()), "--keys", str(keys)],
            check=True, capture_output=True, timeout=60)
        assert load_connection(self.out / "hub").root_public == base.root_public

    def _plan_file(self) -> Path:
        import json
        from dataclasses import asdict

        path = self.root / "plan.json"
        path.write_text(json.dumps(asdict(self.plan)))
        return path

    async def start_hub(self) -> None:
        for node in self.plan.hub:
            self.hub[node.name] = EmbeddedNats(self.root / "run" / "hub" / node.name,
                                               port=node.client_port)
        await asyncio.gather(*(
            asyncio.to_thread(srv.start, _conf_text(self.out / "hub" / f"{name}.conf"))
            for name, srv in self.hub.items()))

    def start_leaf(self, country: str) -> None:
        leaf = self.plan.leaves[country]
        if country not in self.leaves:
            self.leaves[country] = EmbeddedNats(self.root / "run" / "leaf" / country,
                                                port=leaf.client_port)
        srv = self.leaves[country]
        deadline = time.monotonic() + 10
        while port_in_use(srv.host, srv.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        srv.start(_conf_text(self.out / "countries" / country / "leaf.conf"))

    # ---- services --------------------------------------------------------------------

    def service(self, name: str, role: str, *extra: str) -> None:
        env = {**os.environ, "ORCON_PASSPHRASE": self.passphrase}
        log = (self.root / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [str(ORCON), "service", "--role", role, "-d", str(self.out / "hub"), *extra],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    async def start_services(self) -> None:
        self.http = {"sequencer": free_port(), "broker-1": free_port()}
        self.service("sequencer", "sequencer", "--replicas", "3",
                     "--log-key", str(self.root / "keys" / "keys" / f"{LOG_KEY_NAME}.key"),
                     "--http", str(self.http["sequencer"]))
        # The operator's first publication, once the sequencer made the buckets.
        hub = load_connection(self.out / "hub")
        root = FederationRoot.load(self.root / "keys" / "keys" / "root.key", self.passphrase)
        await self._until(lambda: self._publish(hub, root), 90)
        self.service("broker-1", "broker", "--id", "broker-1",
                     "--http", str(self.http["broker-1"]))
        self.service("ack-watcher", "ack-watcher")

    async def _publish(self, hub: Connection, root: FederationRoot) -> None:
        nc = await operator.dial(hub)
        try:
            await operator.publish_directory_file(nc, hub)
            await operator.publish_registry_toml(nc, hub, root, Path(hub.federation).read_bytes(),
                                                 now=datetime.now(UTC))
        finally:
            await nc.close()

    async def _until(self, make: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.check_services()
            try:
                await make()  # type: ignore[operator]
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    def check_services(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.root / f"{name}.log").read_text(errors="replace")[-2000:]
                raise AssertionError(f"service {name} exited with {proc.returncode}:\n{tail}")

    # ---- desks and auditors ----------------------------------------------------------

    def connection(self, country: str) -> Connection:
        return load_connection(self.out / "countries" / country)

    def auditors(self) -> Connection:
        return load_connection(self.out / "auditors")

    async def desk(self, country: str, agency: str) -> AgencyClient:
        async def connect() -> AgencyClient:
            return await AgencyClient.connect(self.connection(country), agency,
                                              passphrase=self.passphrase)
        client: AgencyClient | None = None
        deadline = time.monotonic() + 60
        while client is None:
            self.check_services()
            try:
                client = await connect()
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
        self.clients.append(client)
        return client

    # ---- life cycle ------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            await asyncio.to_thread(self.prepare)
            await self.start_hub()
            for country in self.countries:
                self.start_leaf(country)
            await self.start_services()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    async def stop(self) -> None:
        for c in self.clients:
            # A client of a stopped server: nothing left to close.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.close(), 5)
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for srv in [*self.leaves.values(), *self.hub.values()]:
            await asyncio.to_thread(srv.stop)
