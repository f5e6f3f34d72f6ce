"""The `orcon` command line."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec
import typer
from rich.console import Console

import schemas
from clients import bench, cli_audit, cli_keys, cli_life, cli_ops, cli_policy, cli_schema
from clients.logs import configure

if TYPE_CHECKING:
    from broker.config import BrokerSettings

app = typer.Typer(
    help="orcon: restricted, end-to-end encrypted intelligence sharing over NATS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(cli_keys.app, name="keys")
app.add_typer(cli_policy.app, name="policy")
app.add_typer(cli_schema.app, name="schema")
app.add_typer(cli_audit.app, name="audit")
app.add_typer(cli_ops.app, name="ops")
app.command("bench")(bench.bench)
cli_life.register(app)

console = Console()
err = Console(stderr=True)

DataDir = Annotated[Path, typer.Option("--data-dir", "-d", help="the stack's data directory")]
AsAgency = Annotated[str, typer.Option("--as", help="the agency you act for")]


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(1)


@app.command()
def demo(
    data_dir: Annotated[
        Path | None, typer.Option(help="keep the demo's data here (default: a temp dir)")
    ] = None,
) -> None:
    """Run a scripted exchange on an embedded NATS and print the transcript."""
    from clients.demo import DemoFailed, run_demo

    configure(level="WARNING")
    try:
        asyncio.run(run_demo(console, data_dir))
    except DemoFailed as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; every process was stopped") from None


def _run_until_signal(coro_factory: object) -> None:
    """Run a long-lived service; SIGINT/SIGTERM trigger a graceful drain."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await coro_factory(stop)  # type: ignore[operator]

    asyncio.run(main())


ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="broker settings (TOML); ORCON_* variables override it"),
]
HttpPort = Annotated[
    int | None,
    typer.Option("--http", help="serve /healthz, /readyz and /metrics on this port (loopback)"),
]


def _settings(config: Path | None, **overrides: object) -> BrokerSettings:
    from broker.config import ConfigError, load_settings

    try:
        return load_settings(config, overrides=overrides)
    except ConfigError as exc:
        raise fail(str(exc)) from None


@app.command()
def dev(
    data_dir: DataDir,
    federation: Annotated[Path | None, typer.Option(help="federation TOML")] = None,
    brokers: Annotated[int, typer.Option(min=1, max=16)] = 1,
    port: Annotated[int | None, typer.Option(help="NATS port (default: a free one)")] = None,
    json_logs: Annotated[bool, typer.Option("--json-logs")] = False,
    tls: Annotated[
        bool | None,
        typer.Option("--tls/--no-tls", help="TLS with a generated development CA (default on)"),
    ] = None,
    http: HttpPort = None,
    config: ConfigFile = None,
) -> None:
    """Run an embedded nats-server and brokers until Ctrl-C; writes DIR/connection.json."""
    from broker.health import HealthServer
    from broker.natsserver import NatsServerError
    from broker.stack import DevStack, default_federation
    from broker.tls import TlsError
    from policies.federation import FederationError

    settings = _settings(config, tls=tls, http_port=http, json_logs=json_logs or None)
    configure(json=settings.json_logs)

    async def serve(stop: asyncio.Event) -> None:
        async with DevStack(data_dir, federation or default_federation(), brokers=brokers,
                            port=port, tls=settings.tls,
                            max_message_bytes=settings.max_message_bytes) as stack:
            assert stack.server is not None
            health: HealthServer | None = None
            if settings.http_port is not None:
                hnc = await stack.broker_connection("health")
                health = HealthServer(hnc, stack.metrics, ready=lambda: not stop.is_set(),
                                      host=settings.http_host, port=settings.http_port)
                await health.start()
            err.print(f"orcon dev: NATS at {stack.url}, {brokers} broker(s); "
                      f"connection details in {data_dir / 'connection.json'}"
                      + (f"; health and metrics at {health.url}" if health else "")
                      + ". Ctrl-C stops.")
            try:
                await stop.wait()
                err.print("stopping: draining brokers, then NATS")
            finally:
                if health is not None:
                    await health.stop()
                    await health.nc.close()

    try:
        _run_until_signal(serve)
    except (NatsServerError, FederationError, TlsError, OSError) as exc:
        raise fail(str(exc)) from None


@app.command("broker")
def broker_cmd(
    data_dir: DataDir,
    broker_id: Annotated[str | None, typer.Option("--id")] = None,
    http: HttpPort = None,
    config: ConfigFile = None,
) -> None:
    """Run one more broker process against a running stack (scale out, fault tests).

    SIGTERM or SIGINT drains: the batch in hand is routed and acknowledged, then the
    process exits 0."""
    import nats

    from broker.health import HealthServer
    from broker.keysync import DirectoryWatcher
    from broker.policysync import RegistryWatcher
    from broker.service import Broker, BrokerConfig
    from clients.connection import load_connection
    from keys.directory import Directory
    from policies.engine import PolicyEngine
    from policies.federation import load_federation

    settings = _settings(config, broker_id=broker_id or "broker-x", http_port=http)
    configure(json=True)
    conn = load_connection(data_dir)
    servers = ([u.strip() for u in settings.nats_url.split(",") if u.strip()]
               if settings.nats_url else conn.servers)

    async def serve(stop: asyncio.Event) -> None:
        nc = await nats.connect(servers, nkeys_seed=conn.broker_nkey, name=settings.broker_id,
                                max_reconnect_attempts=-1, reconnect_time_wait=0.25,
                                tls=conn.tls_context())
        engine = PolicyEngine(load_federation(Path(conn.federation)))
        directory = Directory.load(Path(conn.directory).read_bytes(),
                                   bytes.fromhex(conn.root_public))
        b = Broker(nc, engine, directory,
                   BrokerConfig(broker_id=settings.broker_id,
                                max_message_bytes=settings.max_message_bytes,
                                fetch_batch=settings.fetch_batch))
        await b.start()
        # Live updates: root-signed key directory and validated registry (no restart).
        keysync = DirectoryWatcher(nc, directory, lambda d: setattr(b, "directory", d),
                                   broker_id=settings.broker_id)
        registry = RegistryWatcher(nc, lambda: [b.engine], broker_id=settings.broker_id)
        await keysync.start()
        await registry.start()
        health: HealthServer | None = None
        if settings.http_port is not None:
            health = HealthServer(nc, b.metrics, ready=lambda: not stop.is_set(),
                                  host=settings.http_host, port=settings.http_port)
            await health.start()
        await stop.wait()
        if health is not None:
            await health.stop()
        await keysync.stop()
        await registry.stop()
        await b.stop()
        # flush + close, not drain: drain would wait out nats-py's 30 s timeout for the
        # pull subscription's pending fetch, and every ack is already written by now.
        await nc.flush(timeout=2)
        await nc.close()

    _run_until_signal(serve)


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    t = datetime.fromisoformat(value)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@app.command()
def send(
    data_dir: DataDir,
    as_agency: AsAgency,
    body_file: Annotated[Path, typer.Option("--body", help="JSON body (with its 'kind')")],
    category: Annotated[schemas.Category, typer.Option()] = schemas.Category.OTHER,
    level: Annotated[schemas.Level, typer.Option()] = schemas.Level.RESTRICTED,
    to: Annotated[list[str] | None, typer.Option(help="named recipient (repeatable)")] = None,
    audience: Annotated[list[str] | None, typer.Option(help="group or country")] = None,
    exclude: Annotated[list[str] | None, typer.Option()] = None,
    release_to: Annotated[list[str] | None, typer.Option("--release-to")] = None,
    no_onward: Annotated[bool, typer.Option("--no-onward-dissemination")] = False,
    no_evidential: Annotated[bool, typer.Option("--no-evidential-use")] = False,
    expires_in_days: Annotated[int | None, typer.Option(min=1)] = None,
    tlp: Annotated[schemas.TLP | None, typer.Option()] = None,
) -> None:
    """Resolve, seal, sign and submit one message; print who received it and who not."""
    from clients.connection import load_connection
    from clients.render import refusals_table
    from clients.sdk import AgencyClient

    configure(level="WARNING")
    try:
        body = msgspec.json.decode(body_file.read_bytes(), type=schemas.Body)
    except (OSError, msgspec.DecodeError) as exc:
        raise fail(f"{body_file}: {exc}") from None
    restrictions = schemas.Restrictions(
        exclude=exclude or [], release_to=release_to or [], no_onward_dissemination=no_onward,
        no_evidential_use=no_evidential, tlp=tlp,
        expires_at=(datetime.now(UTC) + timedelta(days=expires_in_days))
        if expires_in_days else None,
    )

    async def run() -> None:
        client = await AgencyClient.connect(load_connection(data_dir), as_agency)
        try:
            sent = await client.send(body, category=category, level=level,
                                     restrictions=restrictions, to=to or [],
                                     audience=audience or [])
            console.print(f"message {sent.header.id}")
            if sent.refused:
                console.print(refusals_table(sent.refused))
            if sent.submitted:
                outcome = await client.wait_outcome(sent.header.id)
                console.print(f"delivered to: {', '.join(outcome.delivered) or 'nobody'}")
                if outcome.refused:
                    console.print(refusals_table(outcome.refused, "refused by the broker"))
            else:
                console.print("not sent: no recipient is permitted")
        finally:
            await client.close()

    try:
        asyncio.run(run())
    except (schemas.SchemaError, LookupError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None


@app.command()
def inbox(
    data_dir: DataDir,
    as_agency: AsAgency,
    wait: Annotated[float, typer.Option(help="seconds to wait for deliveries")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fetch, verify and decrypt new deliveries into the agency's encrypted local store,
    acknowledge their restrictions (signed, audited) and show them, restrictions first."""
    from clients.cli_life import store_path
    from clients.connection import load_connection
    from clients.lifecycle import Holder
    from clients.render import message_panel

    configure(level="WARNING")

    async def run() -> None:
        holder = await Holder.open_for(load_connection(data_dir), as_agency,
                                       store_path(data_dir, as_agency))
        try:
            result = await holder.sync(timeout=wait)
            rows = [await holder.open(r.id) for r in result.new]
        finally:
            await holder.close()
        if as_json:
            out = [{"header": r.header, "body": r.body} for r in rows]
            sys.stdout.write(msgspec.json.encode(out).decode() + "\n")
            return
        if not rows:
            console.print("no new messages")
        for r in rows:
            console.print(message_panel(r.header, r.body))
        for rej in result.rejected:
            console.print(f"[red]rejected[/] {rej.message_id or '?'}: {rej.reason}")

    try:
        asyncio.run(run())
    except (LookupError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None


def main() -> None:
    with contextlib.suppress(BrokenPipeError):
        app()


if __name__ == "__main__":
    main()
