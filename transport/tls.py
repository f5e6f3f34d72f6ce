"""The TLS client context every orcon program uses to reach a federation's NATS servers."""

from __future__ import annotations

import ssl
from pathlib import Path


class TlsError(RuntimeError):
    """Certificates could not be created or loaded; the message names the file."""


def client_context(ca_file: str | Path) -> ssl.SSLContext:
    """A client context that trusts only `ca_file` (not the system store: a public CA
    has no business vouching for a federation's NATS servers) and checks host names."""
    path = Path(ca_file)
    if not path.is_file():
        raise TlsError(f"the CA file {path} does not exist")
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(path))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
