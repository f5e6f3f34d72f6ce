"""Operator workflows against a running federation, each one step: sign with the root
where the federation must vouch for the change, publish to the buckets the brokers
watch, and let the brokers audit what they accept (broker/routing/keysync.py,
broker/routing/policysync.py).

- rotation: the agency's new keys, re-signed into its directory entry, published;
- revocation: a new root-signed revocation list, published;
- a new agreement (or any registry edit): the registry signed with a higher serial,
  published;
- a new agency (and with it, possibly, a new country): its directory entry signed and
  published, then the registry with the agency added (the brokers create its delivery
  consumers before they route to it: the operator's credential creates no consumer).

The directory file and the registry file named in connection.json are the operator's
copies: every workflow updates them, so a restarted stack starts from what is in force.
NATS credentials for a new agency are not issued here: the server configuration decides
who may connect (broker/hosting/provision.py).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import msgspec
from nats.aio.client import Client as NATS

from broker.hosting.node import OPERATOR_NAME
from broker.routing.keysync import current_directory, publish_directory
from broker.routing.policysync import current_registry, sign_and_publish_registry
from keys.directory import Directory, FederationRoot, next_serial
from keys.errors import DirectoryError
from keys.keyfile import atomic_write, passphrase_from_env_or_prompt
from keys.records import DirectoryEntry, RegistryRecord, Revocation, RevocationList
from policies.federation import Agency, with_agency
from transport.connection import CLIENT, Connection, connect_nats, load_connection

_T = TypeVar("_T")



class OperatorError(Exception):
    """An operator step that cannot proceed, in one sentence naming what is missing."""


async def dial(conn: Connection) -> NATS:
    """The operator tools' NATS connection: the one dial (CA from connection.json, every
    cluster URL) as the operator's services user, failing fast like any command."""
    if conn.operator_nkey is None:
        raise OperatorError("this connection file carries no operator credential "
                            "(operator_nkey)")
    return await connect_nats(conn, OPERATOR_NAME, conn.operator_nkey, service=True,
                              policy=CLIENT, label="operator", max_reconnect_attempts=3)


def load_root(path: Path) -> FederationRoot:
    """The root key file, opened with ORCON_ROOT_PASSPHRASE (the root normally has a
    passphrase of its own), else ORCON_PASSPHRASE or a prompt."""
    passphrase = os.environ.get("ORCON_ROOT_PASSPHRASE") or passphrase_from_env_or_prompt()
    return FederationRoot.load(path, passphrase)


def operate(data_dir: Path, step: Callable[[NATS, Connection], Awaitable[_T]]) -> _T:
    """Run one operator step, from a command, on a fresh connection to the federation
    named by DATA_DIR/connection.json."""
    conn = load_connection(data_dir)

    async def run() -> _T:
        nc = await dial(conn)
        try:
            return await step(nc, conn)
        finally:
            await nc.close()

    return asyncio.run(run())


async def _directory(nc: NATS, conn: Connection, root_public: bytes) -> Directory:
    """The newer of the operator's file and the bucket (another operator may have
    published since): a change is always made on top of what is in force."""
    mine = Directory.load(Path(conn.directory).read_bytes(), root_public)
    theirs = await current_directory(nc, root_public)
    if theirs is None:
        return mine
    try:
        return mine.successor(theirs)
    except DirectoryError:  # the bucket is behind (or rolled back): ours goes on top
        return mine


async def _publish_directory(nc: NATS, conn: Connection, d: Directory) -> int:
    # Publish first, write the file after: a refused publication leaves both as they were.
    revision = await publish_directory(nc, d.dump(), d.root_public)
    atomic_write(Path(conn.directory), d.dump(), mode=0o644)  # public, root-signed
    return revision


async def publish_directory_file(nc: NATS, conn: Connection) -> int:
    """Push the directory file as it is (after an offline signing step)."""
    return await publish_directory(nc, Path(conn.directory).read_bytes(),
                                   bytes.fromhex(conn.root_public))


async def sign_entry(
    nc: NATS, conn: Connection, root: FederationRoot, keys: DirectoryEntry, *, now: datetime
) -> tuple[DirectoryEntry, int]:
    """Re-sign an agency's entry with new public keys (after a rotation): country, roles
    and clearance stay those of the entry in force; the serial goes up. Returns the
    signed entry and the bucket revision."""
    _check_root(conn, root)
    d = await _directory(nc, conn, root.public_bytes)
    if keys.agency not in d.agencies():
        raise OperatorError(f"{keys.agency} is not in the directory; register it first "
                            "(orcon policy add-agency)")
    current = d.entry(keys.agency)
    entry = msgspec.structs.replace(
        keys, country=current.country, roles=list(current.roles), clearance=current.clearance,
        issued_at=now, serial=next_serial(current.serial, now))
    d.add(root.sign_entry(entry))
    return entry, await _publish_directory(nc, conn, d)


async def revoke(
    nc: NATS, conn: Connection, root: FederationRoot, key_id: str, reason: str, *,
    revoked_at: datetime, now: datetime,
) -> tuple[str, RevocationList, int]:
    """Add a revocation to the root-signed list and publish it. Returns the agency whose
    key it is, the new list and the bucket revision."""
    _check_root(conn, root)
    d = await _directory(nc, conn, root.public_bytes)
    agency, _ = d.find_key(key_id)
    if d.revocation(key_id) is not None:
        raise OperatorError(f"{key_id} is already revoked")
    new = RevocationList(
        serial=d.revocations.serial + 1, issued_at=now,
        revocations=[*d.revocations.revocations, Revocation(key_id, agency, revoked_at, reason)],
    )
    d.set_revocations(root.sign_revocations(new))
    return agency, new, await _publish_directory(nc, conn, d)


async def publish_registry_toml(
    nc: NATS, conn: Connection, root: FederationRoot, toml: bytes, *, now: datetime
) -> tuple[int, RegistryRecord]:
    """Validate, sign (serial above the one in force) and publish a registry; the
    registry file of connection.json becomes this version."""
    _check_root(conn, root)
    revision, record = await sign_and_publish_registry(nc, root, toml, now=now)
    atomic_write(Path(conn.federation), toml, mode=0o644)
    return revision, record


async def register_agency(
    nc: NATS, conn: Connection, root: FederationRoot, agency: Agency, keys: DirectoryEntry,
    *, now: datetime,
) -> tuple[DirectoryEntry, RegistryRecord]:
    """A new agency (of a country already in the federation or not) in one step: the
    registry with it added is validated, its directory entry (attributes from the
    registry) signed and published, then the registry. The brokers create its delivery
    consumers when they take that registry (broker/hosting/node.py), before routing to it."""
    _check_root(conn, root)
    if keys.agency != agency.id:
        raise OperatorError(f"the keys are {keys.agency}'s, not {agency.id}'s")
    registry = await current_registry(nc, root.public_bytes)
    toml = registry.federation if registry is not None else Path(conn.federation).read_bytes()
    new_toml, _ = with_agency(toml, agency)  # validated before anything is signed
    d = await _directory(nc, conn, root.public_bytes)
    if agency.id in d.agencies():
        raise OperatorError(f"{agency.id} is already in the directory")
    entry = msgspec.structs.replace(
        keys, country=agency.country, roles=[str(r) for r in agency.roles],
        clearance=str(agency.clearance), issued_at=now, serial=next_serial(0, now))
    try:
        d.add(root.sign_entry(entry))
    except DirectoryError as exc:
        raise OperatorError(f"{agency.id}: {exc}") from None
    # Keys before the agreement that names them: senders resolve recipients against
    # both, and an entry the registry does not know yet is harmless.
    await _publish_directory(nc, conn, d)
    _, record = await publish_registry_toml(nc, conn, root, new_toml, now=now)
    return entry, record


def _check_root(conn: Connection, root: FederationRoot) -> None:
    if root.public_bytes.hex() != conn.root_public:
        raise OperatorError(
            f"the root key {root.key_id} is not the federation's pinned root "
            "(connection.json root_public)")
