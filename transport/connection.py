"""`connection.json`: how a program finds the NATS URL, its credentials and the pinned
federation root key (written by `orcon dev`, read by the SDK and the CLI)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from pathlib import Path
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


class AgencyCredentials(msgspec.Struct, frozen=True):
    nkey: str  # path of the NATS nkey seed file
    key: str | None = None  # path of the orcon identity (encrypted); auditors have none


class Connection(msgspec.Struct, frozen=True):
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
        """A context trusting only `ca`; None for a plain (non-TLS) server."""
        return client_context(self.ca) if self.ca else None

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


async def connect_nats(conn: Connection, name: str, nkey_path: str, **kwargs: object) -> NATS:
    # With a CA in connection.json the server requires TLS and is verified against
    # that CA alone; `conn.servers` lists every cluster node so a client survives the
    # loss of the one it first reached.
    tls = conn.tls_context()
    if tls is not None:
        kwargs.setdefault("tls", tls)
    # nats-py retries the first connection `max_reconnect_attempts` times (30 s by
    # default) when nothing listens: a stopped stack would look like a hang. A plain TCP
    # probe of every listed node fails fast; reconnecting later is still allowed.
    for url in conn.servers:
        if await _answers(url, PROBE_TIMEOUT):
            break
    else:
        raise StackUnreachable(conn.url)
    kwargs.setdefault("error_cb", _quiet_error)
    return await nats.connect(
        conn.servers,
        nkeys_seed=nkey_path,
        inbox_prefix=s.inbox_prefix(name).encode(),
        name=f"orcon-{name}",
        max_reconnect_attempts=kwargs.pop("max_reconnect_attempts", 60),
        reconnect_time_wait=0.5,
        **kwargs,
    )
