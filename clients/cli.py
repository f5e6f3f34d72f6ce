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
from rich.text import Text

import schemas
from clients import (
    bench,
    cli_audit,
    cli_deploy,
    cli_interop,
    cli_keys,
    cli_life,
    cli_policy,
    cli_schema,
    cli_services,
)
from clients.logs import configure
from clients.render import plain

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
app.command("bench")(bench.bench)
cli_life.register(app)
cli_interop.register(app)
cli_services.register(app)
cli_deploy.register(app)

console = Console()
err = Console(stderr=True)

DataDir = Annotated[Path, typer.Option("--data-dir", "-d", help="the stack's data directory")]
AsAgency = Annotated[str, typer.Option("--as", help="the agency you act for")]


def fail(message: str) -> typer.Exit:
    err.print(Text.assemble(("error:", "red"), " ", plain(message)))  # may quote input
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
    urgent_ack_timeout: Annotated[float, typer.Option(
        min=1, envvar="ORCON_URGENT_ACK_TIMEOUT",
        help="seconds after which an urgent message not acknowledged is re-notified to "
             "its recipient and reported to its sender")] = 900,
) -> None:
    """Run an embedded nats-server and brokers until Ctrl-C; writes DIR/connection.json."""
    from broker.health import HealthServer
    from broker.natsserver import NatsServerError
    from broker.stack import DevStack, default_federation
    from broker.tls import TlsError
    from policies.federation import FederationError

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
    purpose: Annotated[list[schemas.Purpose] | None, typer.Option(
        "--purpose", help="a purpose the information may be used for (repeatable)")] = None,
    no_public_disclosure: Annotated[bool, typer.Option("--no-public-disclosure")] = False,
    not_to_suspects: Annotated[bool, typer.Option("--not-to-suspects")] = False,
    consult_before_action: Annotated[bool, typer.Option("--consult-before-action")] = False,
) -> None:
    """Resolve, seal, sign and submit one message; print who received it and who not."""
    from clients.cli_life import store_path
    from clients.connection import load_connection
    from clients.lifecycle import Holder
    from clients.render import refusals_table
    from clients.sdk import SendError

    configure(level="WARNING")
    try:
        body = msgspec.json.decode(body_file.read_bytes(), type=schemas.Body)
    except (OSError, msgspec.DecodeError) as exc:
        raise fail(f"{body_file}: {exc}") from None
    restrictions = schemas.Restrictions(
        exclude=exclude or [], release_to=release_to or [], no_onward_dissemination=no_onward,
        no_evidential_use=no_evidential, tlp=tlp, purposes=purpose or [],
        no_public_disclosure=no_public_disclosure, not_to_suspects=not_to_suspects,
        consult_before_action=consult_before_action,
        expires_at=(datetime.now(UTC) + timedelta(days=expires_in_days))
        if expires_in_days else None,
    )

    async def run() -> str | None:
        """None when at least one recipient got the message, else why nobody did."""
        # Through the Holder so the sender keeps its copy (header, body, outcome).
        holder = await Holder.open_for(load_connection(data_dir), as_agency,
                                       store_path(data_dir, as_agency))
        client = holder.client
        try:
            sent = await client.send(body, category=category, level=level,
                                     restrictions=restrictions, to=to or [],
                                     audience=audience or [])
            console.print(f"message {sent.header.id}")
            if sent.refused:
                console.print(refusals_table(sent.refused))
            if not sent.submitted:
                return "not sent: no recipient is permitted (see the refusals above)"
            outcome = await client.wait_outcome(sent.header.id)
            if outcome.status == "rejected":
                return f"not delivered: the broker rejected the message ({outcome.error})"
            console.print(f"delivered to: {', '.join(outcome.delivered) or 'nobody'}")
            if outcome.refused:
                console.print(refusals_table(outcome.refused, "refused by the broker"))
            if not outcome.delivered:
                return "not delivered: the broker refused every recipient (see above)"
            return None
        finally:
            await holder.close()

    try:
        nobody = asyncio.run(run())
    except schemas.SchemaError as exc:
        raise fail("not sent, nothing was sealed:\n  " + "\n  ".join(
            str(e) for e in exc.errors)) from None
    except (SendError, LookupError, FileNotFoundError, TimeoutError) as exc:
        raise fail(str(exc)) from None
    if nobody is not None:
        raise fail(nobody)


@app.command()
def inbox(
    data_dir: DataDir,
    as_agency: AsAgency,
    wait: Annotated[float, typer.Option(help="seconds to wait for deliveries")] = 2.0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fetch, verify and decrypt new deliveries into the agency's encrypted local store,
    acknowledge their restrictions (signed, audited) and show them, restrictions first."""
    from rich.text import Text

    from clients.cli_life import store_path
    from clients.connection import load_connection
    from clients.lifecycle import Holder
    from clients.render import message_panel, rejection_line

    configure(level="WARNING")

    async def run() -> None:
        holder = await Holder.open_for(load_connection(data_dir), as_agency,
                                       store_path(data_dir, as_agency))
        try:
            # Everything stored but never shown, whichever command fetched it; opening
            # acknowledges (signed, audited).
            result = await holder.sync(timeout=wait)
            rows = [await holder.open(r.id) for r in holder.unread()]
        finally:
            await holder.close()
        received = [r for r in rows if r.direction == "in"]
        notices = [r for r in rows if r.direction == "out"]
        if as_json:
            out: list[dict[str, object]] = [
                {"header": r.header, "body": r.body, "restrictions": r.restrictions,
                 "reminders": r.reminders} for r in received]
            out += [{"header": r.header, "overdue": r.record.overdue} for r in notices]
            sys.stdout.write(msgspec.json.encode(out).decode() + "\n")
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
        for rej in result.rejected:
            console.print(rejection_line(rej.message_id, rej.reason))

    try:
        asyncio.run(run())
    except (LookupError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None


def main() -> None:
    with contextlib.suppress(BrokenPipeError):
        app()


if __name__ == "__main__":
    main()
