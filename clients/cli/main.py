"""The `orcon` command line."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import msgspec
import typer
from rich.console import Console
from rich.text import Text

from clients.cli import audit as cli_audit
from clients.cli import compose as cli_compose
from clients.cli import console as cli_console
from clients.cli import deploy as cli_deploy
from clients.cli import interop as cli_interop
from clients.cli import keys as cli_keys
from clients.cli import life as cli_life
from clients.cli import ops as cli_ops
from clients.cli import policy as cli_policy
from clients.cli import read as cli_read
from clients.cli import schema as cli_schema
from clients.cli import services as cli_services
from clients.cli.common import UNREACHABLE, Json
from clients.cli.logs import configure
from clients.cli.render import plain

if TYPE_CHECKING:
    from broker.hosting.config import BrokerSettings
    from clients.sdk.holder import Holder
    from clients.sdk.store import Row

app = typer.Typer(
    help="orcon: restricted, end-to-end encrypted intelligence sharing over NATS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    epilog="Exit codes: 0 done; 1 not done (nothing delivered, log invalid); 2 refused "
           "(invalid input, or a restriction forbids it); 3 the stack cannot be reached. "
           "--json prints one JSON document (docs/cli.md).",
)
app.add_typer(cli_keys.app, name="keys")
app.add_typer(cli_policy.app, name="policy")
app.add_typer(cli_schema.app, name="schema")
app.add_typer(cli_audit.app, name="audit")
app.add_typer(cli_ops.app, name="ops")


@app.command("bench", add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context) -> None:
    """Measure orcon on this machine (starts and stops its own NATS and brokers; run
    from a source checkout: the benchmarks are not part of the installed package)."""
    import typer.main

    bench_app = _bench_app()
    typer.main.get_command(bench_app).main(args=ctx.args, prog_name="orcon bench")


app.command("console")(cli_console.console)
cli_life.register(app)
cli_interop.register(app)
cli_services.register(app)
cli_deploy.register(app)
cli_compose.register(app)
cli_read.register(app)

console = Console()
err = Console(stderr=True)

DataDir = Annotated[Path, typer.Option("--data-dir", "-d", help="the stack's data directory")]
AsAgency = Annotated[str, typer.Option("--as", help="the agency you act for")]


def fail(message: str, code: int = 1, *, as_json: bool = False) -> typer.Exit:
    from clients.cli.common import fail as common_fail

    return common_fail(message, code, as_json=as_json)


@app.command()
def demo(
    data_dir: Annotated[
        Path | None, typer.Option(help="keep the demo's data here (default: a temp dir)")
    ] = None,
) -> None:
    """Run a scripted exchange on an embedded NATS and print the transcript."""
    from clients.cli.demo import DemoFailed, run_demo

    configure(level="WARNING")
    try:
        asyncio.run(run_demo(console, data_dir))
    except DemoFailed as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; every process was stopped") from None




ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="broker settings (TOML); ORCON_* variables override it"),
]
HttpPort = Annotated[
    int | None,
    typer.Option("--http", help="serve /healthz, /readyz and /metrics on this port (loopback)"),
]


def _settings(config: Path | None, **overrides: object) -> BrokerSettings:
    from broker.hosting.config import ConfigError, load_settings

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
    urgent_ack_timeout: Annotated[float, typer.Option(
        min=1, envvar="ORCON_URGENT_ACK_TIMEOUT",
        help="seconds after which an urgent message not acknowledged is re-notified to "
             "its recipient and reported to its sender")] = 900,
) -> None:
    """Run an embedded nats-server and brokers until Ctrl-C; writes DIR/connection.json."""
    from broker.hosting.health import HealthServer
    from broker.hosting.natsserver import NatsServerError
    from broker.hosting.stack import DevStack, default_federation
    from policies.federation import FederationError
    from transport.tls import TlsError

    settings = _settings(config, tls=tls, http_port=http, json_logs=json_logs or None)
    configure(json=settings.json_logs)
    passphrase = _dev_passphrase(data_dir)

    async def serve(stop: asyncio.Event) -> None:
        async with DevStack(data_dir, federation or default_federation(), brokers=brokers,
                            port=port, tls=settings.tls,
                            max_message_bytes=settings.max_message_bytes,
                            urgent_ack_timeout=timedelta(seconds=urgent_ack_timeout),
                            passphrase=passphrase) as stack:
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
                cli_services.settled()
                await stop.wait()
                err.print("stopping: draining brokers, then NATS")
            finally:
                if health is not None:
                    await health.stop()
                    await health.nc.close()

    from clients.sdk.datadir_lock import DataDirInUse, hold

    try:
        with hold(data_dir):
            cli_services.run_until_signal(serve)
    except DataDirInUse as exc:
        raise fail(str(exc)) from None
    except (NatsServerError, FederationError, TlsError, OSError) as exc:
        raise fail(str(exc)) from None


@app.command("wait")
def wait_cmd(
    data_dir: DataDir,
    timeout: Annotated[float, typer.Option(min=0.1, help="give up after this many seconds")]
    = 120.0,
    as_json: Json = False,
) -> None:
    """Wait until the stack in DIR answers (its connection.json written, a broker serving
    the key directory): `orcon dev -d DIR & orcon wait -d DIR && orcon send ...`.
    Exit 3 if it does not within --timeout."""
    from clients.sdk.client import fetch_directory
    from transport.connection import connect_nats, load_connection

    configure(level="ERROR")

    async def ready() -> str | None:
        try:
            conn = load_connection(data_dir)
        except (FileNotFoundError, msgspec.DecodeError):
            return None  # not written yet, or being written
        name, creds = next(iter(sorted(conn.agencies.items())))
        try:
            nc = await connect_nats(conn, name, creds.nkey, allow_reconnect=False)
        except Exception:
            return None
        try:
            await fetch_directory(nc, name, bytes.fromhex(conn.root_public))
            return conn.url
        except Exception:
            return None
        finally:
            await nc.close()

    async def poll() -> str | None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            url = await ready()
            if url is not None or loop.time() >= end:
                return url
            await asyncio.sleep(0.25)

    url = asyncio.run(poll())
    if url is None:
        raise fail(f"the stack in {data_dir} did not answer within {timeout:g} s; is "
                   f"`orcon dev --data-dir {data_dir}` running?", UNREACHABLE, as_json=as_json)
    if as_json:
        sys.stdout.write(msgspec.json.encode({"ready": True, "url": url}).decode() + "\n")
    else:
        console.print(plain(f"stack ready at {url}"))


def _dev_passphrase(data_dir: Path) -> str:
    """ORCON_PASSPHRASE, or a hidden prompt. `orcon dev` never writes a passphrase to
    disk, so the other commands (send, inbox, ...) need the same ORCON_PASSPHRASE."""
    import os

    from keys.errors import KeyFileError
    from keys.keyfile import passphrase_from_env_or_prompt

    if not os.environ.get("ORCON_PASSPHRASE") and not sys.stdin.isatty():
        raise fail("set ORCON_PASSPHRASE: the development keys are encrypted with it and "
                   "orcon dev never writes a passphrase to disk")
    try:
        return passphrase_from_env_or_prompt(
            confirm=not (data_dir / "keys" / "root.key").exists())
    except KeyFileError as exc:
        raise fail(str(exc)) from None


@app.command()
def inbox(
    data_dir: DataDir,
    as_agency: AsAgency,
    wait: Annotated[float, typer.Option(help="seconds to wait for deliveries")] = 2.0,
    as_json: Json = False,
) -> None:
    """Fetch, verify and decrypt new deliveries into the agency's encrypted local store,
    acknowledge their restrictions (signed, audited) and show them, restrictions first."""
    from clients.cli.common import emit, with_holder
    from clients.cli.render import message_panel

    async def act(holder: Holder) -> list[Row]:
        # Everything stored but never shown, whichever command fetched it; opening
        # acknowledges (signed, audited).
        return [await holder.open(r) for r in holder.unread()]

    # The one path of every command: fetch (refused deliveries reported), act, close;
    # errors as one line, or one JSON object with --json.
    rows = with_holder(data_dir, as_agency, act, as_json=as_json, sync=wait)
    received = [r for r in rows if r.direction == "in"]
    notices = [r for r in rows if r.direction == "out"]
    if as_json:
        out: list[dict[str, object]] = [
            {"header": r.header, "body": r.body, "restrictions": r.restrictions,
             "reminders": r.reminders} for r in received]
        out += [{"header": r.header, "overdue": r.record.overdue} for r in notices]
        emit(out)
        return
    if not rows:
        console.print("no new messages")
    for r in received:
        if r.reminders:
            console.print(Text(f"reminder: urgent message {r.id} re-notified "
                               f"{r.reminders} time(s): not yet acknowledged",
                               style="bold red"))
        # Restrictions as they bind now (a forwarder's tightening, an amendment).
        shown = msgspec.structs.replace(r.header, restrictions=r.restrictions)
        console.print(message_panel(shown, r.body))
    for r in notices:
        for o in r.record.overdue:
            console.print(Text(f"not acknowledged: your urgent message {r.id} by "
                               f"{o.recipient} ({o.reason})", style="bold red"))


def main() -> None:
    with contextlib.suppress(BrokenPipeError):
        app()


def _bench_app() -> typer.Typer:
    """`bench/` lives beside the packages in a checkout, not inside them: found from the
    checkout this program was installed from (an editable install), else refused."""
    try:
        from bench.run import app as bench_app
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parents[2]
        if not (root / "bench" / "run.py").is_file():
            raise fail("orcon bench needs a source checkout: the benchmarks are not installed "
                 "with the package (clone the repository, then `make bench`)", code=2) from None
        sys.path.insert(0, str(root))
        from bench.run import app as bench_app
    return bench_app


if __name__ == "__main__":
    main()
