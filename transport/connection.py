"""`connection.json`: how a program finds the NATS URL, its credentials and the pinned
federation root key (written by `orcon dev` and `orcon deploy render`, read by every
program), and `connect_nats`, the one way any orcon program dials NATS with them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import nats
import structlog
from nats.aio.client import Client as NATS

from transport import subjects as s
from transport.tls import client_context

log = structlog.get_logger("orcon.connection")

CONNECTION_FILE = "connection.json"
PASSPHRASE_ENV = "ORCON_PASSPHRASE"


class AgencyCredentials(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    nkey: str  # path of the NATS nkey seed file
    key: str | None = None  # path of the orcon identity (encrypted); auditors have none


class Connection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # One URL, or several separated by commas (the nodes of a cluster); `tls://` when
    # the server requires TLS.
    url: str
    root_public: str  # hex; pinned out of band, never fetched from the broker
    federation: str  # path of the federation file the broker enforces
    directory: str  # path of the signed key directory
    agencies: dict[str, AgencyCredentials]
    # Written by older development stacks; never any more (the passphrase stays off
    # disk). Still read, so an old data directory keeps working.
    passphrase_file: str | None = None
    broker_nkey: str | None = None
    # The operator's credential (writes the directory and registry buckets).
    operator_nkey: str | None = None
    log_public: str | None = None  # hex Ed25519 key that signs audit tree heads
    ca: str | None = None  # path of the PEM CA that signs the NATS server certificate

    @property
    def servers(self) -> list[str]:
        return [u.strip() for u in self.url.split(",") if u.strip()]

    def tls_context(self) -> ssl.SSLContext | None:
        """A context trusting only `ca`; None for a plain (non-TLS) server. A `tls://`
        URL without `ca` is refused: it would trust the system's CAs instead."""
        if self.ca:
            return client_context(self.ca)
        if any(u.startswith("tls://") for u in self.servers):
            raise LookupError(f"connection.json: url {self.url!r} asks for TLS but names no "
                              "`ca` (the federation's CA file)")
        return None

    def passphrase(self) -> str:
        """The passphrase of the key files: ORCON_PASSPHRASE from the environment (an
        old data directory's passphrase file as a fallback)."""
        value = os.environ.get(PASSPHRASE_ENV)
        if value:
            return value
        if self.passphrase_file and Path(self.passphrase_file).is_file():
            return Path(self.passphrase_file).read_text().strip()
        raise LookupError(f"no passphrase: set {PASSPHRASE_ENV} to the passphrase the stack "
                          "was started with")

    def credentials(self, agency: str) -> AgencyCredentials:
        try:
            return self.agencies[agency]
        except KeyError:
            known = ", ".join(sorted(self.agencies))
            raise LookupError(f"no credentials for {agency} (known: {known})") from None


def write_connection(data_dir: Path, conn: Connection) -> Path:
    path = Path(data_dir) / CONNECTION_FILE
    path.write_bytes(msgspec.json.format(msgspec.json.encode(conn), indent=2))
    return path


def load_connection(data_dir: Path) -> Connection:
    path = Path(data_dir) / CONNECTION_FILE
    try:
        return msgspec.json.decode(path.read_bytes(), type=Connection)
    except msgspec.ValidationError as exc:
        # An unknown or mistyped field (say `ca_file` for `ca`) would otherwise be dropped
        # and with it, silently, TLS.
        known = ", ".join(Connection.__struct_fields__)
        raise LookupError(f"{path}: {exc} (the fields: {known})") from None
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} does not exist: start a stack with 'orcon dev --data-dir {data_dir}'"
        ) from None


class StackUnreachable(ConnectionError):
    """No NATS server listed in connection.json accepts a connection (the stack is
    stopped, or connection.json is stale)."""

    def __init__(self, url: str) -> None:
        super().__init__(f"no NATS server answers at {url}")
        self.url = url


PROBE_TIMEOUT = 2.0


async def _answers(url: str, timeout: float) -> bool:
    u = urlsplit(url if "://" in url else f"nats://{url}")
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(u.hostname, u.port or 4222), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _quiet_error(exc: Exception) -> None:
    # nats-py's default prints a traceback per failed attempt; one line is enough.
    log.debug("nats_error", error=type(exc).__name__, detail=str(exc))


async def _service_error(exc: Exception) -> None:
    # A service's operator wants to see connection trouble, in one line, not a traceback.
    log.warning("nats_error", error=type(exc).__name__, detail=str(exc))


@dataclass(frozen=True)
class DialPolicy:
    """How a program keeps its NATS connection. Two exist, one per kind of program."""

    # How often a lost connection is re-dialled (-1: for as long as the process runs).
    max_reconnect_attempts: int
    reconnect_time_wait: float
    # Probe every listed node with plain TCP first and raise StackUnreachable when none
    # answers: nats-py would otherwise retry the first connection for the whole
    # reconnect budget, and a stopped stack would look like a hang.
    probe: bool


# A person's command, the SDK, an auditor: fail fast when the stack is down, ride out a
# node's restart (60 × 0.5 s).
CLIENT = DialPolicy(max_reconnect_attempts=60, reconnect_time_wait=0.5, probe=True)
# A service (broker, sequencer, watcher, operator setup): a unit started before
# nats-server waits for it, and a lost node is re-dialled for as long as it runs.
SERVICE = DialPolicy(max_reconnect_attempts=-1, reconnect_time_wait=0.25, probe=False)


async def connect_nats(
    conn: Connection, name: str, nkey_path: str | Path, *, service: bool = False,
    label: str | None = None, servers: Sequence[str] | None = None,
    policy: DialPolicy | None = None, **options: Any,
) -> NATS:
    """The one way orcon dials NATS: as principal `name` (an agency or auditor id; with
    `service`, a services-account user) with its nkey seed, on that principal's own
    reply inboxes (the only ones the server lets it use), to every node of
    `conn.servers` (or `servers`, e.g. an operator's override), with the TLS of
    connection.json whenever it names a CA. `options` go to nats-py as they are
    (`error_cb`, `allow_reconnect`, `max_reconnect_attempts`, `dont_randomize`...);
    `tls` cannot be among them."""
    if "tls" in options:
        raise TypeError("connect_nats: TLS comes from connection.json (its `ca`), never "
                        "from the caller")
    policy = policy or (SERVICE if service else CLIENT)
    urls = list(servers) if servers else conn.servers
    # With a CA in connection.json the server requires TLS and is verified against
    # that CA alone; every cluster node is listed so a client survives the loss of the
    # one it first reached.
    tls = conn.tls_context()
    if policy.probe:
        for url in urls:
            if await _answers(url, PROBE_TIMEOUT):
                break
        else:
            raise StackUnreachable(",".join(urls) if servers else conn.url)
    options.setdefault("error_cb", _service_error if service else _quiet_error)
    options.setdefault("max_reconnect_attempts", policy.max_reconnect_attempts)
    options.setdefault("reconnect_time_wait", policy.reconnect_time_wait)
    inbox = s.service_inbox(name) if service else s.inbox_prefix(name)
    return await nats.connect(
        urls,
        nkeys_seed=str(nkey_path),
        inbox_prefix=inbox.encode(),
        name=f"orcon-{label or name}",
        tls=tls,
        **options,
    )
