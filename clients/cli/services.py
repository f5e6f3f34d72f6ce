"""`orcon service --role broker|sequencer|ack-watcher` (and `orcon broker`, the broker
role under its historical name): one long-running service per process, each dialling
NATS with its own credential, assembled by broker/hosting/node.py exactly as `orcon dev`
assembles them in one process. The systemd units of deploy/systemd/ run these."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from clients.cli.logs import configure
from clients.cli.render import plain

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS

    from broker.hosting.config import BrokerSettings
    from broker.hosting.node import ServiceNode
    from broker.metrics import Metrics

err = Console(stderr=True)

DataDir = Annotated[Path, typer.Option("--data-dir", "-d", help="the data directory "
                                       "(connection.json, creds/)")]
HttpPort = Annotated[int | None, typer.Option(
    "--http", help="serve /healthz, /readyz and /metrics on this port (brokers, "
                   "sequencer)")]
ConfigFile = Annotated[Path | None, typer.Option(
    "--config", "-c", help="settings (TOML); ORCON_* variables override it")]


def _fail(message: str) -> typer.Exit:
    err.print(Text.assemble(("error:", "red"), " ", plain(message)))
    return typer.Exit(1)


def run_until_signal(serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(stop)

    from broker.hosting import eventloop

    eventloop.run(main())  # ORCON_UVLOOP=1: uvloop, as for `orcon dev`


def settled() -> None:
    """The service is up: what it loaded stays out of the cycle collector's way."""
    from broker.hosting import eventloop

    eventloop.settle_heap()


def service(
    role: Annotated[str, typer.Option(help="broker, sequencer or ack-watcher")],
    data_dir: DataDir,
    service_id: Annotated[str | None, typer.Option("--id", help="name in logs and audit "
                                                   "events (brokers)")] = None,
    creds: Annotated[Path | None, typer.Option(
        help="the role's NATS nkey seed (default DATA/creds/orcon-ROLE.nk)")] = None,
    http: HttpPort = None,
    config: ConfigFile = None,
    log_key: Annotated[Path | None, typer.Option(
        help="sequencer: the log's signing key (default DATA/keys/ORCON-LOG.key; "
             "passphrase from ORCON_PASSPHRASE)")] = None,
    replicas: Annotated[int, typer.Option(
        min=1, max=5, help="sequencer: stream replicas (3 on a hub cluster)")] = 1,
    urgent_ack_timeout: Annotated[float, typer.Option(
        min=1, envvar="ORCON_URGENT_ACK_TIMEOUT",
        help="ack-watcher: seconds before an urgent message not acknowledged is "
             "re-notified")] = 900,
) -> None:
    """Run one service until SIGTERM/SIGINT (which drain it), with its own credential."""
    from broker.hosting.config import ConfigError, load_settings
    from broker.hosting.node import ROLE_USER, SERVICE_ROLES

    if role not in SERVICE_ROLES:
        raise _fail(f"--role: {role!r} is not a service role (valid: "
                    f"{', '.join(SERVICE_ROLES)})")
    try:
        settings = load_settings(config, overrides={"broker_id": service_id,
                                                    "http_port": http})
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    configure(json=True)
    user = ROLE_USER[role]
    seed = creds or data_dir / "creds" / f"{user}.nk"
    if not seed.is_file():
        raise _fail(f"--creds: {seed} does not exist (the {role}'s NATS credential)")
    try:
        if role == "broker":
            run_until_signal(lambda stop: _broker(data_dir, seed, settings, stop))
        elif role == "sequencer":
            run_until_signal(lambda stop: _sequencer(
                data_dir, seed, settings, log_key, replicas, stop))
        else:
            run_until_signal(lambda stop: _ack_watcher(
                data_dir, seed, settings.nats_url, timedelta(seconds=urgent_ack_timeout),
                stop))
    except (FileNotFoundError, LookupError, TimeoutError) as exc:
        raise _fail(str(exc)) from None


def broker(
    data_dir: DataDir,
    broker_id: Annotated[str | None, typer.Option("--id")] = None,
    http: HttpPort = None,
    config: ConfigFile = None,
) -> None:
    """Run one broker process (`orcon service --role broker`): brokers share the
    submission consumer, so run as many as you like.

    SIGTERM or SIGINT drains: the batch in hand is routed and acknowledged, then the
    process exits 0."""
    service(role="broker", data_dir=data_dir, service_id=broker_id or "broker-x",
            creds=None, http=http, config=config, log_key=None, replicas=1,
            urgent_ack_timeout=900)


def _services(data_dir: Path, role: str, seed: Path, nats_url: str | None) -> ServiceNode:
    """The assembly `orcon dev` uses too (broker/hosting/node.py): this role's seed, the
    URLs of `--nats-url`/ORCON_NATS_URL or else connection.json, its TLS, the clock."""
    from broker.hosting.node import ServiceNode
    from transport.connection import load_connection

    servers = [u.strip() for u in nats_url.split(",") if u.strip()] if nats_url else None
    return ServiceNode(load_connection(data_dir), data_dir / "creds", servers=servers,
                       seeds={role: seed})


@contextlib.asynccontextmanager
async def _health(nc: NATS, metrics: Metrics, settings: BrokerSettings,
                  stop: asyncio.Event) -> AsyncIterator[None]:
    """`/healthz`, `/readyz` and `/metrics` on `--http` while the service runs."""
    from broker.hosting.health import HealthServer

    if settings.http_port is None:
        yield
        return
    health = HealthServer(nc, metrics, ready=lambda: not stop.is_set(),
                          host=settings.http_host, port=settings.http_port)
    await health.start()
    try:
        yield
    finally:
        await health.stop()


async def _broker(data_dir: Path, seed: Path, settings: object,
                  stop: asyncio.Event) -> None:
    from broker.hosting.config import BrokerSettings
    from keys.directory import Directory
    from policies.federation import load_federation

    assert isinstance(settings, BrokerSettings)
    services = _services(data_dir, "broker", seed, settings.nats_url)
    conn = services.conn
    node = services.brokers(
        load_federation(Path(conn.federation)),
        Directory.load(Path(conn.directory).read_bytes(), bytes.fromhex(conn.root_public)),
        max_message_bytes=settings.max_message_bytes, fetch_batch=settings.fetch_batch)
    try:
        await node.start([settings.broker_id])
        async with _health(node.brokers[0].nc, node.metrics, settings, stop):
            settled()
            await stop.wait()
    finally:
        await node.stop()


async def _sequencer(data_dir: Path, seed: Path, settings: object, log_key: Path | None,
                     replicas: int, stop: asyncio.Event) -> None:
    from broker.hosting.config import BrokerSettings
    from broker.hosting.stack import LOG_KEY_NAME
    from keys.keyfile import load_identity
    from policies.federation import load_federation

    assert isinstance(settings, BrokerSettings)
    services = _services(data_dir, "sequencer", seed, settings.nats_url)
    conn = services.conn
    identity = await asyncio.to_thread(
        load_identity, log_key or data_dir / "keys" / f"{LOG_KEY_NAME}.key", conn.passphrase())
    fed = load_federation(Path(conn.federation))
    nc = await services.dial("sequencer", "sequencer")
    try:
        async with (services.sequencer(nc, identity, [a.id for a in fed.agencies],
                                       replicas=replicas, ready_timeout=120.0),
                    _health(nc, services.metrics, settings, stop)):
            settled()
            await stop.wait()
    finally:
        await nc.close()


async def _ack_watcher(data_dir: Path, seed: Path, nats_url: str | None, timeout: timedelta,
                       stop: asyncio.Event) -> None:
    services = _services(data_dir, "ack-watcher", seed, nats_url)
    nc = await services.dial("ack-watcher", "ack-watcher")
    try:
        async with services.ack_watcher(nc, timeout=timeout, ready_timeout=120.0):
            settled()
            await stop.wait()
    finally:
        await nc.close()


def register(app: typer.Typer) -> None:
    app.command("service")(service)
    app.command("broker")(broker)
