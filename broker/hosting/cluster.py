"""A three-node nats-server cluster on one machine, provisioned by orcon.

Each node runs JetStream; the streams are created with three replicas, so every
accepted submission, delivery and audit event is stored on all three nodes and one
node can stop (crash, upgrade, reboot) without losing a message or stopping routing.
Clients and brokers get the three URLs and reconnect to a remaining node.

    python -m broker.hosting.cluster --data-dir /tmp/c        # run until Ctrl-C
    python -m broker.hosting.cluster --data-dir /tmp/c --write-only deploy/cluster

The first form writes DIR/connection.json, so `orcon broker --data-dir DIR`, `orcon send`
and `orcon inbox` work against the cluster unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import signal
import time
from datetime import datetime
from pathlib import Path

import msgspec
import structlog
from nats.aio.client import Client as NATS

from broker.hosting import provision
from broker.hosting import tls as devtls
from broker.hosting.natsserver import EmbeddedNats, free_port
from broker.hosting.node import Running, ServiceNode, ensure_federation_streams
from broker.hosting.stack import (
    dev_passphrase,
    members,
    provision_federation,
)
from broker.routing import streams
from keys.errors import KeyFileError
from keys.keyfile import atomic_write, read_private
from policies.federation import load_federation
from schemas.clock import Clock, utcnow
from transport import subjects as s
from transport.connection import Connection, write_connection

log = structlog.get_logger("orcon.cluster")

HOST = "127.0.0.1"
REPLICAS = 3


ROUTE_PASSWORD_MIN = 32  # characters; the generated one has 48 (24 random bytes, hex)


def _route_password(path: Path) -> str:
    """A random route password kept 0600 beside the credentials: without it nothing
    else on the machine can join the cluster and receive replicated streams. Written
    whole or not at all (a crash never leaves a truncated one that would be taken as
    the password); one too short, or readable by others, is refused, never used."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(path, secrets.token_hex(24).encode(), mode=0o600)
    password = read_private(path).decode("ascii", "replace").strip()
    if len(password) < ROUTE_PASSWORD_MIN:
        raise KeyFileError(f"{path}: a route password of {len(password)} characters (at "
                           f"least {ROUTE_PASSWORD_MIN}); delete the file and a new one "
                           "is generated")
    return password


class LocalCluster(Running):
    """`async with LocalCluster(dir, federation) as c:` runs three nodes."""

    def __init__(
        self,
        data_dir: Path,
        federation_path: Path,
        *,
        size: int = REPLICAS,
        tls: bool = False,
        fast_kdf: bool = False,
        ack_wait_s: float = 30.0,
        passphrase: str | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.federation_path = Path(federation_path)
        self.size = size
        self.tls = tls
        self.fast_kdf = fast_kdf
        self.ack_wait_s = ack_wait_s
        self.passphrase = dev_passphrase(passphrase)  # in memory only
        self.nodes: dict[str, provision.ClusterNode] = {}
        self.servers: dict[str, EmbeddedNats] = {}
        self.configs: dict[str, str] = {}
        self.tls_files: devtls.TlsFiles | None = None
        self.connection: Connection | None = None
        # The assembly of broker/hosting/node.py (the one `orcon dev` and `orcon service`
        # use), made once the nodes' URLs are known.
        self.services: ServiceNode | None = None

    # ---- configuration -------------------------------------------------------------

    def write_configs(self) -> dict[str, str]:
        """Provision keys and credentials, pick loopback ports and build each node's
        config (kept in `self.configs`; EmbeddedNats writes it to node/nats.conf)."""
        conn = provision_federation(self.data_dir, self.federation_path, now=self.clock(),
                                    fast_kdf=self.fast_kdf, passphrase=self.passphrase)
        fed = load_federation(Path(conn.federation))
        principals = provision.provision(self.data_dir / "creds", members(fed))
        if self.tls:
            self.tls_files = devtls.ensure_dev_ca(self.data_dir / "tls", now=self.clock())
        for i in range(1, self.size + 1):
            name = f"n{i}"
            node_dir = self.data_dir / "nodes" / name
            self.nodes[name] = provision.ClusterNode(
                name=name, client_port=free_port(HOST), cluster_port=free_port(HOST),
                store_dir=node_dir / "jetstream",
            )
        self.configs = provision.cluster_configs(
            nodes=list(self.nodes.values()), principals=principals,
            route_password=_route_password(self.data_dir / "creds" / "route.pw"),
            host=HOST, tls=self.tls_files,
        )
        self.connection = msgspec.structs.replace(
            conn,
            url=",".join(n.url(HOST, self.tls) for n in self.nodes.values()),
            ca=str(self.tls_files.ca) if self.tls_files else None,
        )
        write_connection(self.data_dir, self.connection)
        self.services = ServiceNode(self.connection, self.data_dir / "creds", clock=self.clock)
        return self.configs

    # ---- life cycle ----------------------------------------------------------------

    async def start(self, timeout: float = 30.0) -> None:
        self.write_configs()
        for name, node in self.nodes.items():
            self.servers[name] = EmbeddedNats(self.data_dir / "nodes" / name, host=HOST,
                                              port=node.client_port)
        # Started together: a node waits for its routes, so starting them one by one
        # would serialise three readiness timeouts.
        await asyncio.gather(*(asyncio.to_thread(srv.start, self.configs[name])
                               for name, srv in self.servers.items()))
        # The sequencer's user creates the streams: the brokers' may not reconfigure
        # the audit streams (broker/hosting/provision.py).
        nc = await self.broker_connection("setup", role="sequencer")
        try:
            fed = load_federation(self.federation_path)
            await ensure_federation_streams(
                nc, [a.id for a in fed.agencies], replicas=self.size,
                ack_wait_s=self.ack_wait_s, ready_timeout=timeout, buckets=False)
            await self.wait_healthy(nc, timeout)
        finally:
            await nc.close()
        log.info("cluster_started", nodes=len(self.servers))

    async def stop(self) -> None:
        await asyncio.gather(*(asyncio.to_thread(srv.stop) for srv in self.servers.values()))

    def stop_node(self, name: str) -> None:
        self.servers[name].stop()

    def start_node(self, name: str) -> None:
        self.servers[name].start(self.configs[name])

    def node_of(self, nc: NATS) -> str:
        """Which node a client is connected to (by the port of its current URL)."""
        url = nc.connected_url
        assert url is not None, "not connected"
        for name, node in self.nodes.items():
            if url.port == node.client_port:
                return name
        raise LookupError(f"{url} is not a node of this cluster")

    async def broker_connection(
        self, label: str, *, first: str | None = None, role: str = "broker"
    ) -> NATS:
        """A connection with the brokers' credentials (or another service role's);
        node `first` is tried first (the others stay in the pool for reconnection)."""
        assert self.services is not None
        return await self.services.dial(
            role, label, first=self.nodes[first].url(HOST, self.tls) if first else None,
            dont_randomize=True)

    async def wait_healthy(self, nc: NATS, timeout: float = 30.0) -> None:
        """Until every stream and the brokers' consumer have a leader and a full set of
        current replicas: publishing before that can time out while RAFT elects."""
        js = nc.jetstream()
        deadline = time.monotonic() + timeout
        names = [cfg.name for cfg in streams.stream_configs(self.size) if cfg.name]
        while True:
            try:
                ok = True
                for name in names:
                    info = await js.stream_info(name)
                    c = info.cluster
                    live = [r for r in (c.replicas or []) if r.current and not r.offline] \
                        if c else []
                    ok = ok and c is not None and c.leader is not None \
                        and len(live) == len(self.running()) - 1
                for ci in await js.consumers_info(s.SUBMIT_STREAM):
                    ok = ok and ci.cluster is not None and ci.cluster.leader is not None
                if ok:
                    return
            except Exception as exc:  # no leader yet, timeouts during election
                log.debug("cluster_not_ready", error=type(exc).__name__)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the cluster was not healthy within {timeout:.0f} s")
            await asyncio.sleep(0.2)

    def running(self) -> list[str]:
        return [name for name, srv in self.servers.items() if srv.running]


def write_sample(out: Path, data_dir: Path, federation: Path, now: datetime) -> list[Path]:
    """Write node configs for `deploy/cluster/`: the federation's real users and
    permissions (public nkeys from a provisioning under `data_dir`), with fixed ports,
    production paths and placeholders where a secret belongs."""
    conn = provision_federation(data_dir, federation, now=now)
    principals = provision.provision(data_dir / "creds", members(load_federation(
        Path(conn.federation))))
    nodes = [provision.ClusterNode(name=f"n{i}", client_port=4221 + i, cluster_port=6221 + i,
                                   store_dir=Path(f"/var/lib/orcon/nats/n{i}/jetstream"))
             for i in (1, 2, 3)]
    etc = Path("/etc/orcon/tls")
    configs = provision.cluster_configs(
        nodes=nodes, principals=principals, route_password="CHANGE-ME-route-password",
        tls=devtls.TlsFiles(ca=etc / "ca.pem", cert=etc / "server.pem", key=etc / "server.key"),
    )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in configs.items():
        path = out / f"{name}.conf"
        path.write_text(
            f"# orcon cluster node {name} (generated: python -m broker.hosting.cluster "
            "--data-dir DIR --write-only OUT).\n"
            "# Regenerate rather than edit: users and permissions follow the federation.\n"
            "# Replace CHANGE-ME-route-password (all three files, same value) and keep the\n"
            "# real files 0600; certificate paths: see docs/operations.md.\n" + text + "\n"
        )
        written.append(path)
    return written


def main() -> None:
    from broker.hosting.stack import default_federation

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--federation", type=Path, default=default_federation())
    parser.add_argument("--no-tls", action="store_true")
    parser.add_argument("--write-only", type=Path, metavar="OUT",
                        help="only write the three node configs to OUT")
    args = parser.parse_args()
    if args.write_only:
        for p in write_sample(args.write_only, args.data_dir, args.federation, utcnow()):
            print(p)
        return

    from keys.keyfile import passphrase_from_env_or_prompt

    # Never written to disk: `orcon send` and friends need the same ORCON_PASSPHRASE.
    passphrase = passphrase_from_env_or_prompt()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with LocalCluster(args.data_dir, args.federation, tls=not args.no_tls,
                                passphrase=passphrase) as c:
            assert c.connection is not None
            print(f"orcon cluster: {c.connection.url}; connection details in "
                  f"{args.data_dir / 'connection.json'}; run brokers with "
                  f"'orcon broker --data-dir {args.data_dir}'. Ctrl-C stops.", flush=True)
            await stop.wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
