"""Life-cycle commands after delivery: use, consent, forward, purge, requests, alerts.

Each command opens the agency's local store (DATA_DIR/stores/AGENCY.db), pulls new
deliveries into it, and (like every client start) purges what has expired."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

import schemas
from schemas.codes import ConsentScope, UseKind

if TYPE_CHECKING:
    from clients.lifecycle import Holder, RequestStatus

T = TypeVar("T")

console = Console()
err = Console(stderr=True)

DataDir = Annotated[Path, typer.Option("--data-dir", "-d", help="the stack's data directory")]
AsAgency = Annotated[str, typer.Option("--as", help="the agency you act for")]

consent_app = typer.Typer(help="Ask for, grant or refuse the originator's consent.",
                          no_args_is_help=True)
alerts_app = typer.Typer(help="Focal points' alerts.", no_args_is_help=True)


def store_path(data_dir: Path, agency: str) -> Path:
    return data_dir / "stores" / f"{agency}.db"


def _run(data_dir: Path, agency: str, action: Callable[..., Awaitable[T]]) -> T:
    from clients.connection import load_connection
    from clients.lifecycle import Holder, LifecycleError
    from clients.logs import configure

    configure(level="WARNING")

    async def main() -> T:
        h = await Holder.open_for(load_connection(data_dir), agency,
                                  store_path(data_dir, agency))
        try:
            await h.sync(timeout=0.5)
            return await action(h)
        finally:
            await h.close()

    try:
        return asyncio.run(main())
    except LifecycleError as exc:
        err.print(f"[red]refused[/] {exc.rule}: {exc.reason}")
        raise typer.Exit(2) from None
    except (LookupError, FileNotFoundError, TimeoutError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


def use(
    data_dir: DataDir, as_agency: AsAgency,
    message_id: Annotated[str, typer.Argument(help="the message used")],
    purpose: Annotated[schemas.Purpose, typer.Option()],
    evidential: Annotated[bool, typer.Option("--evidential")] = False,
    note: Annotated[str | None, typer.Option()] = None,
    kind: Annotated[UseKind | None, typer.Option(
        "--kind", help="what the use is (default: analysis, or evidence with --evidential); "
        "public_disclosure, show_to_suspect and executive_action need the originator's "
        "consent when it restricted them")] = None,
) -> None:
    """Declare a use; refused, naming the restriction, when the originator forbids it."""
    async def act(h: Holder) -> None:
        sent = await h.use(message_id, purpose, evidential, note, use=kind)
        console.print(f"use declared: {sent.id}")
    _run(data_dir, as_agency, act)


@consent_app.command("request")
def consent_request(
    data_dir: DataDir, as_agency: AsAgency,
    message_id: Annotated[str, typer.Argument()],
    action: Annotated[ConsentScope, typer.Option(help="what the consent would allow")],
    justification: Annotated[str, typer.Option()],
    to: Annotated[str | None, typer.Option(help="third party (onward_dissemination)")] = None,
) -> None:
    """Ask the originator to allow one action (for forwarding: to one third party)."""
    async def act(h: Holder) -> None:
        sent = await h.request_consent(message_id, action, to=to,
                                       justification=justification)
        console.print(f"consent requested: {sent.id}")
    _run(data_dir, as_agency, act)


@consent_app.command("grant")
def consent_grant(
    data_dir: DataDir, as_agency: AsAgency,
    request_id: Annotated[str, typer.Argument()],
    condition: Annotated[list[str] | None, typer.Option(help="repeatable")] = None,
    valid_days: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Grant a consent request (as the originator), with conditions and an expiry."""
    until = datetime.now(UTC) + timedelta(days=valid_days) if valid_days else None

    async def act(h: Holder) -> None:
        sent = await h.grant(request_id, conditions=condition or [],
                             valid_until=until)
        console.print(f"consent granted: {sent.id}")
    _run(data_dir, as_agency, act)


@consent_app.command("refuse")
def consent_refuse(
    data_dir: DataDir, as_agency: AsAgency,
    request_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option()],
) -> None:
    """Refuse a consent request, with the reason."""
    async def act(h: Holder) -> None:
        sent = await h.refuse(request_id, reason)
        console.print(f"consent refused: {sent.id}")
    _run(data_dir, as_agency, act)


def forward(
    data_dir: DataDir, as_agency: AsAgency,
    message_id: Annotated[str, typer.Argument()],
    to: Annotated[str, typer.Option(help="the third party")],
) -> None:
    """Forward through the broker; it checks H2, consent and policy and explains refusals."""
    async def act(h: Holder) -> None:
        outcome = await h.forward(message_id, to)
        console.print(f"forwarded to {to} ({', '.join(outcome.delivered)})")
    _run(data_dir, as_agency, act)


def purge(data_dir: DataDir, as_agency: AsAgency) -> None:
    """Destroy expired messages from the local store, each with a signed purge receipt."""
    async def act(h: Holder) -> list[str]:
        return await h.purge()
    purged = _run(data_dir, as_agency, act)
    console.print(f"purged {len(purged)} message(s)" + (f": {', '.join(purged)}" if purged
                                                         else ""))


def requests(
    data_dir: DataDir, as_agency: AsAgency,
    overdue: Annotated[bool, typer.Option("--overdue", help="only overdue ones")] = False,
) -> None:
    """Requests sent and received, with their deadlines; overdue ones in red."""
    async def act(h: Holder) -> list[RequestStatus]:
        return h.requests(overdue_only=overdue)
    rows = _run(data_dir, as_agency, act)
    table = Table(title="requests", title_justify="left")
    for col in ("id", "kind", "dir", "counterpart", "due", "answered"):
        table.add_column(col)
    for r in rows:
        due = f"{r.due_at:%Y-%m-%d %H:%M}Z" if r.due_at else "—"
        table.add_row(r.id, r.kind, r.direction, r.counterpart,
                      f"[red]{due} overdue[/]" if r.overdue else due,
                      "yes" if r.answered_at else "no")
    console.print(table if rows else "no requests")


@alerts_app.command("watch")
def alerts_watch(data_dir: DataDir, as_agency: AsAgency) -> None:
    """Show alerts live as they arrive (Ctrl-C stops), restrictions beside each."""
    from clients.alerts import watch

    async def act(h: Holder) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await watch(h, console, stop)
    _run(data_dir, as_agency, act)


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the main `orcon` app."""
    app.command("use")(use)
    app.command("forward")(forward)
    app.command("purge")(purge)
    app.command("requests")(requests)
    app.add_typer(consent_app, name="consent")
    app.add_typer(alerts_app, name="alerts")
