"""`orcon console`: the web console for one agency (or an auditor), on loopback."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)


def console(
    data_dir: Annotated[Path, typer.Option("--data-dir", "-d", help="the stack's data directory")],
    as_agency: Annotated[str, typer.Option("--as", help="the agency (or auditor) you act for")],
    host: Annotated[str, typer.Option(help="address to bind (loopback unless --allow-remote)")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="0: a free port")] = 8765,
    allow_remote: Annotated[bool, typer.Option("--allow-remote",
                                               help="allow a non-loopback --host")] = False,
) -> None:
    """Serve the web console: inbox, outbox, compose, consents, requests, alerts, audit.

    Prints a sign-in URL carrying a one-time session token; open it in a browser on this
    machine. The agency's key stays in this process."""
    from clients.cli.logs import configure
    from clients.console.serve import ConsoleError, serve

    configure(level="WARNING")

    def ready(url: str) -> None:
        # stdout, flushed: the URL is for the officer (and for scripts that start us).
        print(f"orcon console for {as_agency}: {url}", flush=True)
        err.print("Ctrl-C stops.")

    try:
        asyncio.run(serve(data_dir, as_agency, host=host, port=port, allow_remote=allow_remote,
                          passphrase=os.environ.get("ORCON_PASSPHRASE"), on_ready=ready))
    except ConsoleError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    except (LookupError, FileNotFoundError, OSError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass
