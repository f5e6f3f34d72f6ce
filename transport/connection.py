"""`connection.json`: how a program finds the NATS URL, its credentials and the pinned
federation root key (written by `orcon dev`, read by the SDK and the CLI)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import msgspec

from transport.tls import client_context

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
