"""`orcon policy ...` commands: explain a decision, check a registry, preview a change."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from policies.engine import Decision, PolicyEngine, PolicyLoadError
from policies.federation import FederationError, load_federation
from schemas.header import Header

app = typer.Typer(help="policy commands", no_args_is_help=True)

FederationOpt = Annotated[
    Path, typer.Option("--federation", "-f", help="federation registry (TOML)")
]
PolicyDirOpt = Annotated[
    Path | None, typer.Option("--policy-dir", help="Cedar policy directory (default: built-in)")
]
NowOpt = Annotated[
    str | None,
    typer.Option("--now", help="decision time, ISO 8601 with offset (default: current time)"),
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def _now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(f"--now: '{value}' is not an ISO 8601 date-time") from None
    if t.tzinfo is None:
        raise _fail(f"--now: '{value}' needs a UTC offset (e.g. 2025-06-01T12:00:00Z)")
    return t


def _engine(federation: Path, policy_dir: Path | None) -> PolicyEngine:
    try:
        return PolicyEngine(load_federation(federation), policy_dir)
    except (FederationError, PolicyLoadError) as e:
        raise _fail(str(e)) from None


def _header(path: Path) -> Header:
    try:
        return msgspec.json.decode(path.read_bytes(), type=Header)
    except OSError as e:
        raise _fail(f"{path}: cannot be read ({e.strerror})") from None
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise _fail(f"{path}: not a valid header ({e})") from None


@app.command()
def explain(
    federation: FederationOpt,
    header: Annotated[Path, typer.Option("--header", help="header as JSON")],
    recipient: Annotated[list[str], typer.Option("--recipient", "-r", help="agency id")],
    policy_dir: PolicyDirOpt = None,
    now: NowOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Why may (or may not) each RECIPIENT receive the message with this header?"""
    engine = _engine(federation, policy_dir)
    h = _header(header)
    decisions = engine.decide_receive(h, recipient, _now(now))
    if as_json:
        typer.echo(msgspec.json.encode([_as_dict(d) for d in decisions]).decode())
        return
    for d in decisions:
        typer.echo(f"{d.recipient}: {d.reason}")
        typer.echo(f"  rule: {d.rule}" + (f" (all: {', '.join(d.rules)})"
                                            if len(d.rules) > 1 else ""))
        typer.echo(f"  policy version: {d.policy_version}")


def _as_dict(d: Decision) -> dict[str, object]:
    return {"recipient": d.recipient, "allowed": d.allowed, "rule": d.rule,
            "reason": d.reason, "rules": list(d.rules), "policy_version": d.policy_version}


@app.command()
def check(federation: FederationOpt, policy_dir: PolicyDirOpt = None) -> None:
    """Validate a registry and the policies against it."""
    engine = _engine(federation, policy_dir)
    fed = engine.federation
    typer.echo(
        f"ok: {fed.name}: {len(fed.agencies)} agencies, {len(fed.groups)} groups, "
        f"{len(fed.agreements)} agreements; policy version {engine.version}"
    )


@app.command()
def whatif(
    new_policy_dir: Annotated[Path, typer.Argument(help="the proposed Cedar policy directory")],
    federation: FederationOpt,
    headers: Annotated[Path, typer.Option("--headers", help="directory of *.json headers")],
    new_federation: Annotated[
        Path | None, typer.Option("--new-federation", help="proposed registry (default: same)")
    ] = None,
    policy_dir: PolicyDirOpt = None,
    now: NowOpt = None,
) -> None:
    """Which recipients of the given headers would change under NEW_POLICY_DIR?"""
    old = _engine(federation, policy_dir)
    new = _engine(new_federation or federation, new_policy_dir)
    at = _now(now)
    files = sorted(headers.glob("*.json"))
    if not files:
        raise _fail(f"{headers}: no *.json headers")
    changes = 0
    for path in files:
        h = _header(path)
        rcps = sorted(set(old.candidates(h)) | set(new.candidates(h)))
        for a, b in zip(old.decide_receive(h, rcps, at), new.decide_receive(h, rcps, at),
                        strict=True):
            if a.allowed != b.allowed:
                changes += 1
                verb = "now permitted" if b.allowed else "now refused"
                typer.echo(f"{path.name} {b.recipient}: {verb}: {b.reason} (was: {a.reason})")
    typer.echo(f"{changes} change(s) across {len(files)} header(s); "
               f"policy version {old.version} -> {new.version}")


@app.command()
def publish(
    data_dir: Annotated[Path, typer.Option("--data-dir", "-d", help="a running stack's data dir")],
    federation: Annotated[Path, typer.Option(exists=True, dir_okay=False)],
) -> None:
    """Validate a federation registry and push it to every running broker (no restart);
    brokers log a policy_changed audit event."""
    import asyncio

    import nats

    from broker.policysync import publish_registry
    from clients.connection import load_connection

    conn = load_connection(data_dir)
    if conn.broker_nkey is None:
        typer.echo("error: this connection file carries no operator credentials", err=True)
        raise typer.Exit(1)

    async def run() -> int:
        nc = await nats.connect(conn.url, nkeys_seed=conn.broker_nkey)
        try:
            return await publish_registry(nc, federation.read_bytes())
        finally:
            await nc.close()

    try:
        revision = asyncio.run(run())
    except FederationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"registry published (revision {revision})")
