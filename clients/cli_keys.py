"""`orcon keys ...` commands: generate, rotate and inspect identities; revoke keys.

Passphrases come from ORCON_PASSPHRASE or a hidden prompt, never from an argument (which
would land in shell history and the process list).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, NoReturn

import typer

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

_AGENCY = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,39}\Z")  # one NATS subject token

app = typer.Typer(help="keys commands", no_args_is_help=True)

FastKdf = Annotated[
    bool, typer.Option("--fast-kdf", hidden=True, help="tests only: a KDF with no strength")
]
Suites = Annotated[
    list[str] | None,
    typer.Option("--suite", help=f"KEM suite, repeatable: {', '.join(reversed(SUITES))}"),
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except CryptoError:
        _fail("wrong passphrase, or the file was tampered with")
    except KeysError as exc:
        _fail(str(exc))


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
        ident = Identity.generate(agency, suites=suites)
        save_identity(ident, out, passphrase, fast=fast_kdf)
    _describe(ident, datetime.now(UTC))


@app.command()
def rotate(
    key: Annotated[Path, typer.Option("--key", exists=True, dir_okay=False)],
    overlap_days: Annotated[
        int, typer.Option("--overlap-days", min=0, help="how long old keys still open")
    ] = 7,
    suite: Suites = None,
    new_signing_key: Annotated[bool, typer.Option("--new-signing-key")] = False,
    fast_kdf: FastKdf = False,
) -> None:
    """Add new KEM keys; the current ones keep opening messages for the overlap. Publish
    the new directory entry (signed by the root) for senders to use the new keys."""
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
        save_identity(ident, key, passphrase, fast=fast_kdf)
    _describe(ident, now)


@app.command()
def revoke(
    root: Annotated[Path, typer.Option("--root", exists=True, dir_okay=False)],
    directory: Annotated[Path, typer.Option("--directory", exists=True, dir_okay=False)],
    key_id: Annotated[str, typer.Option("--key-id")],
    reason: Annotated[str, typer.Option("--reason")],
    at: Annotated[
        datetime | None,
        typer.Option("--at", help="when the key stopped being trustworthy (UTC); default now"),
    ] = None,
) -> None:
    """Revoke a key: sign a new revocation list with the root and store it in the
    directory file."""
    now = datetime.now(UTC)
    revoked_at = now if at is None else at if at.tzinfo else at.replace(tzinfo=UTC)
    with _errors():
        fed_root = FederationRoot.load(root, passphrase_from_env_or_prompt())
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
    """Push the stack's directory file (after rotate/revoke and re-signing) to every
    broker; clients pick it up within seconds."""
    import asyncio

    import nats

    from broker.keysync import publish_directory
    from clients.connection import load_connection

    conn = load_connection(data_dir)
    if conn.broker_nkey is None:
        _fail("this connection file carries no operator credentials")

    async def run() -> int:
        nc = await nats.connect(conn.url, nkeys_seed=conn.broker_nkey)
        try:
            return await publish_directory(nc, Path(conn.directory).read_bytes(),
                                           bytes.fromhex(conn.root_public))
        finally:
            await nc.close()

    with _errors():
        revision = asyncio.run(run())
    typer.echo(f"directory published (revision {revision})")
