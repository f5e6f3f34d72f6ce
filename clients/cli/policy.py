"""`orcon policy ...` commands: explain a decision, check a registry, preview a change;
sign and publish the registry, register an agency in a running federation.

The registry brokers enforce is signed by the federation root (broker/routing/policysync.py):
`publish --root` signs and publishes in one step; where the root stays offline, `sign`
runs on the offline machine and `publish --signed` on the online one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import msgspec
import typer

from broker.hosting.operator import load_root, operate
from keys.directory import verify_registry
from keys.errors import CryptoError, KeysError
from keys.keyfile import load_identity, passphrase_from_env_or_prompt
from keys.records import DirectoryEntry
from policies.engine import Decision, PolicyEngine, PolicyLoadError
from policies.federation import Agency, AgencyType, FederationError, Role, load_federation
from schemas.codes import Level
from schemas.header import Header

if TYPE_CHECKING:

    pass

_T = TypeVar("_T")

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


RootOpt = Annotated[
    Path | None,
    typer.Option("--root", exists=True, dir_okay=False, help="the federation root key file"),
]


@contextmanager
def _publishing() -> Iterator[None]:
    from nats.errors import Error as NatsError

    from broker.hosting.operator import OperatorError

    try:
        yield
    except CryptoError:
        raise _fail("wrong passphrase, a tampered key file, or not signed by the "
                    "federation root") from None
    except (FederationError, PolicyLoadError, KeysError, OperatorError) as exc:
        raise _fail(str(exc)) from None
    except (NatsError, OSError) as exc:
        raise _fail(f"cannot publish: {type(exc).__name__}: {exc}") from None


@app.command()
def sign(
    federation: Annotated[Path, typer.Option(exists=True, dir_okay=False)],
    root: Annotated[Path, typer.Option("--root", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="signed registry file")],
) -> None:
    """Validate a registry and sign it with the root (offline); `publish --signed` puts
    it in force. Its serial is the signing time in milliseconds."""
    from broker.routing.policysync import sign_registry
    from keys.directory import next_serial

    now = datetime.now(UTC)
    with _publishing():
        fed_root = load_root(root)
        serial = next_serial(0, now)
        out.write_bytes(sign_registry(fed_root, federation.read_bytes(), serial=serial, now=now))
    typer.echo(f"registry signed by root {fed_root.key_id} (serial {serial}): {out}")


@app.command()
def publish(
    data_dir: Annotated[Path, typer.Option("--data-dir", "-d", help="a running stack's data dir")],
    federation: Annotated[Path | None, typer.Option(exists=True, dir_okay=False)] = None,
    root: RootOpt = None,
    signed: Annotated[
        Path | None, typer.Option("--signed", exists=True, dir_okay=False,
                                  help="a registry signed offline (`orcon policy sign`)")
    ] = None,
) -> None:
    """Put a registry in force in every running broker (no restart): --federation with
    --root signs it (serial above the one in force) and publishes; --signed publishes
    one signed offline. Brokers log a policy_changed audit event."""
    from broker.hosting.operator import publish_registry_toml
    from broker.routing.policysync import publish_registry

    if signed is None and (federation is None or root is None):
        raise typer.BadParameter("give --federation and --root, or --signed")
    if signed is not None and (federation is not None or root is not None):
        raise typer.BadParameter("--signed is already signed: no --federation or --root")
    now = datetime.now(UTC)
    with _publishing():
        if signed is not None:
            blob = signed.read_bytes()
            revision = operate(data_dir, lambda nc, conn: publish_registry(
                nc, blob, bytes.fromhex(conn.root_public)))
            serial = verify_registry(blob, _root_public(data_dir)).serial
        else:
            assert federation is not None and root is not None
            fed_root, toml = load_root(root), federation.read_bytes()
            revision, record = operate(data_dir, lambda nc, conn: publish_registry_toml(
                nc, conn, fed_root, toml, now=now))
            serial = record.serial
    typer.echo(f"registry published (serial {serial}, revision {revision})")


def _root_public(data_dir: Path) -> bytes:
    from transport.connection import load_connection

    return bytes.fromhex(load_connection(data_dir).root_public)


@app.command("add-agency")
def add_agency(
    data_dir: Annotated[Path, typer.Option("--data-dir", "-d", help="a running federation")],
    root: Annotated[Path, typer.Option("--root", exists=True, dir_okay=False)],
    agency_id: Annotated[str, typer.Option("--id", help="agency id, e.g. VN-MPS")],
    name: Annotated[str, typer.Option("--name")],
    country: Annotated[str, typer.Option("--country", help="ISO 3166-1 alpha-2")],
    agency_type: Annotated[AgencyType, typer.Option("--type")],
    clearance: Annotated[Level, typer.Option("--clearance")],
    role: Annotated[list[Role], typer.Option("--role", help="repeatable")],
    group: Annotated[list[str] | None, typer.Option("--group", help="repeatable")] = None,
    key: Annotated[
        Path | None, typer.Option("--key", exists=True, dir_okay=False,
                                  help="the agency's identity file")
    ] = None,
    public: Annotated[
        Path | None, typer.Option("--public", exists=True, dir_okay=False,
                                  help="its public keys (`orcon keys export`)")
    ] = None,
) -> None:
    """Register an agency (and so, possibly, a new country) in a running federation:
    the registry with it added and its directory entry, both signed by the root and
    published; brokers audit both changes."""
    from broker.hosting.operator import register_agency

    if (key is None) == (public is None):
        raise typer.BadParameter("give one of --key or --public")
    now = datetime.now(UTC)
    with _publishing():
        try:
            agency = msgspec.convert(
                {"id": agency_id, "name": name, "country": country, "type": agency_type,
                 "roles": role, "clearance": clearance, "groups": group or []},
                type=Agency)
        except msgspec.ValidationError as exc:
            raise _fail(f"agency {agency_id}: {exc}") from None
        if key is not None:
            keys = load_identity(key, passphrase_from_env_or_prompt()).directory_entry(
                country="", roles=[], clearance="", now=now)
        else:
            assert public is not None
            try:
                keys = msgspec.msgpack.decode(public.read_bytes(), type=DirectoryEntry)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise _fail(f"{public}: not a public keys file ({exc})") from None
        fed_root = load_root(root)
        entry, record = operate(data_dir, lambda nc, conn: register_agency(
            nc, conn, fed_root, agency, keys, now=now))
    typer.echo(f"registered {agency.id} ({agency.country}): entry #{entry.serial}, "
               f"registry serial {record.serial}, signed by root {fed_root.key_id}")
