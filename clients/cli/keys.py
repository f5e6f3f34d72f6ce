"""`orcon keys ...` commands: generate, rotate and inspect identities; revoke keys;
sign and publish directory entries.

Passphrases come from ORCON_PASSPHRASE or a hidden prompt, never from an argument (which
would land in shell history and the process list); the root key's from
ORCON_ROOT_PASSPHRASE when set (the root normally has its own).

With `--data-dir` (a running federation's connection.json) and `--root`, rotation and
revocation finish in one command: signed by the root, published to the brokers, which
audit the change (broker/hosting/operator.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import msgspec
import typer

from broker.hosting.operator import load_root, operate
from keys.directory import Directory, FederationRoot, Revocation, RevocationList
from keys.errors import CryptoError, KeysError
from keys.identity import SUITES, X25519, Identity
from keys.keyfile import (
    atomic_write,
    load_identity,
    passphrase_from_env_or_prompt,
    peek_kind,
    save_identity,
)
from keys.records import DirectoryEntry
from schemas.ids import PARTY_NAME_RE

_T = TypeVar("_T")
_AGENCY = PARTY_NAME_RE  # one NATS subject token

app = typer.Typer(help="keys commands", no_args_is_help=True)

FastKdf = Annotated[
    bool, typer.Option("--fast-kdf", hidden=True, help="tests only: a KDF with no strength")
]
Suites = Annotated[
    list[str] | None,
    typer.Option("--suite", help=f"KEM suite, repeatable: {', '.join(reversed(SUITES))}"),
]


DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", "-d", help="a running federation's data dir (connection.json): "
                 "publish the change"),
]
RootOpt = Annotated[
    Path | None,
    typer.Option("--root", exists=True, dir_okay=False, help="the federation root key file"),
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def _errors() -> Iterator[None]:
    from nats.errors import Error as NatsError

    from broker.hosting.operator import OperatorError

    try:
        yield
    except CryptoError:
        _fail("wrong passphrase, or the file was tampered with")
    except (KeysError, OperatorError) as exc:
        _fail(str(exc))
    except (NatsError, OSError) as exc:
        _fail(f"cannot publish: {type(exc).__name__}: {exc}")


def _public_keys(ident: Identity, now: datetime) -> DirectoryEntry:
    # Country, roles and clearance are the federation's to say (registry, entry in
    # force); the operator fills them in when signing.
    return ident.directory_entry(country="", roles=[], clearance="", now=now)


def _check_suites(suites: list[str]) -> list[str]:
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise typer.BadParameter(f"unknown suite {unknown[0]!r}; choose from {list(SUITES)}")
    return suites


def _describe(ident: Identity, now: datetime) -> None:
    typer.echo(f"agency:       {ident.agency}")
    typer.echo(f"signing key:  {ident.signing_key_id}")
    for k in ident.kem_keys:
        if k.not_after is None:
            state = "current"
        elif k.valid_at(now):
            state = f"retiring at {k.not_after.isoformat()}"
        else:
            state = f"retired at {k.not_after.isoformat()}"
        typer.echo(f"kem key:      {k.key_id}  ({state}, created {k.created_at.isoformat()})")


@app.command()
def generate(
    agency: Annotated[str, typer.Option("--agency", help="agency id, e.g. IT-SCO")],
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="key file to write")],
    suite: Suites = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
    fast_kdf: FastKdf = False,
) -> None:
    """Generate an agency identity and write it encrypted (mode 0600)."""
    suites = _check_suites(suite or [X25519])
    if not _AGENCY.match(agency):
        raise typer.BadParameter(f"{agency!r} is not an agency id (A-Z, 0-9, '-', 2-40 chars)")
    if out.exists() and not force:
        _fail(f"{out} exists; refusing to overwrite a key (use --force)")
    with _errors():
        passphrase = passphrase_from_env_or_prompt(confirm=True)
        now = datetime.now(UTC)
        ident = Identity.generate(agency, suites=suites, now=now)
        save_identity(ident, out, passphrase, fast=fast_kdf)
    _describe(ident, now)


@app.command("generate-root")
def generate_root(
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="root key file to write")],
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
    fast_kdf: FastKdf = False,
) -> None:
    """Generate the federation root key (on the offline machine) and write it encrypted;
    prints the public key to pin in every connection.json."""
    if out.exists() and not force:
        _fail(f"{out} exists; refusing to overwrite a key (use --force)")
    with _errors():
        passphrase = (os.environ.get("ORCON_ROOT_PASSPHRASE")
                      or passphrase_from_env_or_prompt(confirm=True))
        fed_root = FederationRoot.generate(datetime.now(UTC))
        fed_root.save(out, passphrase, fast=fast_kdf)
    typer.echo(f"federation root: {fed_root.key_id}")
    typer.echo(f"public key:      {fed_root.public_bytes.hex()}")


@app.command()
def rotate(
    key: Annotated[Path, typer.Option("--key", exists=True, dir_okay=False)],
    overlap_days: Annotated[
        int, typer.Option("--overlap-days", min=0, help="how long old keys still open")
    ] = 7,
    suite: Suites = None,
    new_signing_key: Annotated[bool, typer.Option("--new-signing-key")] = False,
    data_dir: DataDir = None,
    root: RootOpt = None,
    fast_kdf: FastKdf = False,
) -> None:
    """Add new KEM keys; the current ones keep opening messages for the overlap. With
    --data-dir and --root, also re-sign the agency's directory entry with the root and
    publish it, so senders use the new keys within seconds (else: `orcon keys export`
    for the root holder, who runs `orcon keys sign`)."""
    if (data_dir is None) != (root is None):
        raise typer.BadParameter("--data-dir and --root go together (sign and publish)")
    now = datetime.now(UTC)
    with _errors():
        passphrase = passphrase_from_env_or_prompt()
        ident = load_identity(key, passphrase)
        ident.rotate(
            now,
            timedelta(days=overlap_days),
            _check_suites(suite) if suite else None,
            new_signing_key=new_signing_key,
        )
        # Saved before anything is published: a published key whose secret was never
        # written would receive messages no one can open.
        save_identity(ident, key, passphrase, fast=fast_kdf)
    _describe(ident, now)
    if data_dir is not None and root is not None:
        _sign_and_publish(data_dir, root, _public_keys(ident, now), now)


def _sign_and_publish(data_dir: Path, root: Path, keys: DirectoryEntry, now: datetime) -> None:
    from broker.hosting.operator import sign_entry

    with _errors():
        fed_root = load_root(root)
        entry, revision = operate(
            data_dir, lambda nc, conn: sign_entry(nc, conn, fed_root, keys, now=now))
    typer.echo(f"signed {entry.agency}'s entry #{entry.serial} with root {fed_root.key_id}; "
               f"directory published (revision {revision})")


@app.command()
def export(
    key: Annotated[Path, typer.Option("--key", exists=True, dir_okay=False)],
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="public keys file")],
) -> None:
    """Write the agency's public keys (no secret) for the root holder to sign with
    `orcon keys sign`. Compare the key ids printed here and there over another channel."""
    now = datetime.now(UTC)
    with _errors():
        ident = load_identity(key, passphrase_from_env_or_prompt())
        atomic_write(out, msgspec.msgpack.encode(_public_keys(ident, now)), mode=0o644)
    _describe(ident, now)


@app.command()
def sign(
    data_dir: Annotated[Path, typer.Option("--data-dir", "-d", help="a running federation")],
    root: Annotated[Path, typer.Option("--root", exists=True, dir_okay=False)],
    public: Annotated[
        Path, typer.Option("--public", exists=True, dir_okay=False,
                           help="public keys from `orcon keys export`")
    ],
) -> None:
    """Sign an agency's new public keys into its directory entry (country, roles and
    clearance stay those in force) and publish the directory."""
    try:
        keys = msgspec.msgpack.decode(public.read_bytes(), type=DirectoryEntry)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        _fail(f"{public}: not a public keys file from `orcon keys export` ({exc})")
    typer.echo(f"agency:       {keys.agency}")
    for k in keys.sign_keys + keys.kem_keys:
        typer.echo(f"key:          {k.key_id} ({k.alg})")
    _sign_and_publish(data_dir, root, keys, datetime.now(UTC))


@app.command()
def revoke(
    root: Annotated[Path, typer.Option("--root", exists=True, dir_okay=False)],
    key_id: Annotated[str, typer.Option("--key-id")],
    reason: Annotated[str, typer.Option("--reason")],
    directory: Annotated[
        Path | None, typer.Option("--directory", exists=True, dir_okay=False,
                                  help="directory file to update (offline)")
    ] = None,
    data_dir: DataDir = None,
    at: Annotated[
        datetime | None,
        typer.Option("--at", help="when the key stopped being trustworthy (UTC); default now"),
    ] = None,
) -> None:
    """Revoke a key: sign a new revocation list with the root and store it in the
    directory file (--directory), or publish it to a running federation (--data-dir)."""
    if (directory is None) == (data_dir is None):
        raise typer.BadParameter("give one of --directory (offline) or --data-dir (publish)")
    now = datetime.now(UTC)
    revoked_at = now if at is None else at if at.tzinfo else at.replace(tzinfo=UTC)
    if data_dir is not None:
        from broker.hosting.operator import revoke as revoke_key

        with _errors():
            fed_root = load_root(root)
            agency, rl, revision = operate(data_dir, lambda nc, conn: revoke_key(
                nc, conn, fed_root, key_id, reason, revoked_at=revoked_at, now=now))
        typer.echo(f"revoked {key_id} of {agency} from {revoked_at.isoformat()} "
                   f"(list #{rl.serial}); directory published (revision {revision})")
        return
    assert directory is not None
    with _errors():
        fed_root = load_root(root)
        d = Directory.load(directory.read_bytes(), fed_root.public_bytes)
        agency, _ = d.find_key(key_id)
        if d.revocation(key_id) is not None:
            _fail(f"{key_id} is already revoked")
        current = d.revocations
        new = RevocationList(
            serial=current.serial + 1,
            issued_at=now,
            revocations=[*current.revocations, Revocation(key_id, agency, revoked_at, reason)],
        )
        d.set_revocations(fed_root.sign_revocations(new))
        atomic_write(directory, d.dump(), mode=0o644)  # public data, signed by the root
    typer.echo(f"revoked {key_id} of {agency} from {revoked_at.isoformat()} (list #{new.serial})")


@app.command()
def show(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Public information about a key file (needs the passphrase: the file is encrypted
    whole, so not even the agency name is readable without it)."""
    with _errors():
        kind = peek_kind(file)
        passphrase = passphrase_from_env_or_prompt()
        if kind == "root":
            r = FederationRoot.load(file, passphrase)
            typer.echo(f"federation root: {r.key_id}")
            typer.echo(f"public key:      {r.public_bytes.hex()}")
            return
        _describe(load_identity(file, passphrase), datetime.now(UTC))


@app.command()
def publish(
    data_dir: Annotated[Path, typer.Option("--data-dir", "-d", help="a running stack's data dir")],
) -> None:
    """Push the stack's directory file (after an offline rotate/revoke and re-signing) to
    every broker; clients pick it up within seconds."""
    from broker.hosting.operator import publish_directory_file

    with _errors():
        revision = operate(data_dir, publish_directory_file)
    typer.echo(f"directory published (revision {revision})")
