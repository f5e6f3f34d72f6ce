"""`orcon audit ...` commands (offline: they read a bundle written by `orcon audit fetch`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from broker.audit.events import AuditEvent, decode_record
from broker.audit.report import render_report
from broker.audit.store import BundleError, iter_entries, read_bundle, read_public_key
from broker.audit.verify import VerifyReport, verify_bundle
from schemas.events import EventType

app = typer.Typer(help="audit commands", no_args_is_help=True)

BundleDir = Annotated[
    Path,
    typer.Argument(exists=True, file_okay=False, dir_okay=True, help="a fetched audit bundle"),
]
LogKey = Annotated[
    Path | None,
    typer.Option(
        "--log-key",
        exists=True,
        dir_okay=False,
        help="pin the log's public key (PEM); default: trust the bundle's log_key.pub",
    ),
]


def _pinned(log_key: Path | None) -> bytes | None:
    if log_key is None:
        return None
    # read_public_key takes a directory; a pinned key is usually a lone file.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_public_key,
    )

    try:
        key = load_pem_public_key(log_key.read_bytes())
    except ValueError:
        raise typer.BadParameter(f"{log_key}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise typer.BadParameter(f"{log_key}: the log key must be Ed25519")
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _verify(directory: Path, log_key: Path | None, console: Console) -> VerifyReport:
    pinned = _pinned(log_key)
    with Progress(
        TextColumn("verifying"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        # The bar only helps on long logs; below ~half a second it would just flicker.
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("verify", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            return verify_bundle(directory, progress, log_public_key=pinned)
        except BundleError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None


Json = Annotated[bool, typer.Option("--json", help="one JSON document on stdout")]


@app.command()
def verify(directory: BundleDir, log_key: LogKey = None, as_json: Json = False) -> None:
    """Verify a fetched log: entries, signed heads, consistency. Exit 1 if tampered."""
    import msgspec

    console = Console(stderr=as_json)
    report = _verify(directory, log_key, console)
    key = _pinned(log_key) or read_public_key(directory)
    if as_json:
        typer.echo(msgspec.json.encode({
            "ok": report.ok, "entries": report.entries, "heads": report.heads,
            "consistency_proofs": report.consistency_proofs, "root": report.root.hex(),
            "verified_size": report.verified_size, "log_key": key.hex(),
            "problems": [{"kind": p.kind, "message": p.message, "entry": p.entry,
                          "head": p.head} for p in report.problems]}).decode())
        if not report.ok:
            raise typer.Exit(1)
        return
    if report.ok:
        tail = report.entries - report.verified_size
        console.print(f"[green]OK[/green] {report.summary()}", highlight=False)
        for label, text in (
            ("entries", f"{report.entries}: hash chain intact (each entry names the one "
                        "before it)"),
            ("signed heads", f"{report.heads}: every signature valid under log key "
                             f"{key.hex()[:16]}…"),
            ("consistency", f"{report.consistency_proofs} proof(s) between successive "
                            "signed sizes: each verified (append-only, no fork)"),
            ("root", f"{report.root.hex()} (size {report.entries}); signed heads vouch "
                     f"for the first {report.verified_size}"
                     + (f", {tail} newer not yet covered" if tail else "")),
        ):
            console.print(f"  {label:<13} {text}", highlight=False)
        return
    console.print(f"[red]FAILED[/red] {report.summary()}", highlight=False)
    for p in report.problems:
        where = f" (entry {p.entry})" if p.entry is not None else ""
        console.print(f"  - {p.kind}{where}: {p.message}", highlight=False)
    raise typer.Exit(1)


@app.command()
def report(
    directory: BundleDir,
    html: Annotated[Path, typer.Option("--html", dir_okay=False, help="output file")],
    now: Annotated[
        str | None,
        typer.Option(help="ISO 8601 instant that decides expiry (default: last event)"),
    ] = None,
    log_key: LogKey = None,
) -> None:
    """Write the auditor's self-contained HTML report (verifies the log first)."""
    console = Console()
    at: datetime | None = None
    if now is not None:
        try:
            at = datetime.fromisoformat(now)
        except ValueError:
            raise typer.BadParameter(f"--now {now!r} is not ISO 8601") from None
        if at.tzinfo is None:
            raise typer.BadParameter("--now needs a time zone (e.g. 2025-04-01T00:00Z)")
    verification = _verify(directory, log_key, console)
    try:
        bundle = read_bundle(directory)
        read_public_key(directory)
    except BundleError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    html.write_text(render_report(bundle, verification=verification, now=at), encoding="utf-8")
    state = "verified" if verification.ok else "[red]log verification FAILED[/red]"
    console.print(f"wrote {html} ({len(bundle.entries)} entries; {state})", highlight=False)


@app.command()
def fetch(
    out_dir: Annotated[Path, typer.Argument(help="where to write the bundle")],
    data_dir: Annotated[Path, typer.Option("--data-dir", "-d", help="the stack's data directory")],
    as_agency: Annotated[str, typer.Option("--as", help="the auditor you act for")] = "XX-AUDIT",
    as_json: Json = False,
) -> None:
    """Download the audit log and its signed tree heads (read-only credentials)."""
    import asyncio

    from clients.sdk.auditor import fetch_bundle
    from transport.connection import load_connection

    console = Console(stderr=True)
    with Progress(TextColumn("fetching"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  console=console, transient=True) as bar:
        task = bar.add_task("fetch", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            n, h = asyncio.run(fetch_bundle(load_connection(data_dir), as_agency, out_dir,
                                            progress=progress))
        except Exception as exc:
            from clients.cli.common import explain

            known = explain(exc, data_dir)
            if known is None:
                raise
            bar.stop()
            raise known.exit(as_json=as_json) from None
    if as_json:
        import msgspec

        typer.echo(msgspec.json.encode({"entries": n, "heads": h, "out": str(out_dir)}).decode())
        return
    console.print(f"fetched {n} entries and {h} signed heads into {out_dir}")


def _instant(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{option} {value!r} is not ISO 8601") from None
    if t.tzinfo is None:
        raise typer.BadParameter(f"{option} needs a time zone (e.g. 2025-04-01T00:00Z)")
    return t


@app.command()
def events(
    directory: BundleDir,
    agency: Annotated[str | None, typer.Option(help="acted or was acted upon")] = None,
    message: Annotated[str | None, typer.Option(help="one message id")] = None,
    kind: Annotated[EventType | None, typer.Option(help="one event type")] = None,
    since: Annotated[str | None, typer.Option(help="from this instant (ISO 8601)")] = None,
    until: Annotated[str | None, typer.Option(help="before this instant (ISO 8601)")] = None,
    as_json: Json = False,
) -> None:
    """List a fetched log's events (no Python needed): a table, or a JSON array with
    --json. Reads the bundle as it is; `orcon audit verify` says whether to trust it."""
    import msgspec

    from clients.cli.common import OptionError, choice, shaped
    from schemas.ids import MESSAGE_ID_PATTERN

    t0, t1 = _instant(since, "--since"), _instant(until, "--until")
    try:
        shaped("--message", message, MESSAGE_ID_PATTERN,
               "a message id (26 characters, Crockford base 32)")
    except OptionError as exc:
        raise exc.exit(as_json=as_json) from None
    out: list[tuple[int, AuditEvent]] = []
    parties: set[str] = set()
    undecodable = 0
    try:
        for pos, data in enumerate(iter_entries(directory)):
            try:
                e = decode_record(data).event
            except (msgspec.DecodeError, msgspec.ValidationError):
                undecodable += 1
                continue
            parties.update(p for p in (e.actor, e.counterpart) if p)
            if ((agency and agency not in (e.actor, e.counterpart))
                    or (message and e.message_id != message) or (kind and e.type != kind)
                    or (t0 and e.at < t0) or (t1 and e.at >= t1)):
                continue
            out.append((pos, e))
    except BundleError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if undecodable:
        Console(stderr=True).print(f"{undecodable} entries could not be decoded; `orcon audit "
                                   "verify` names them", highlight=False)
    try:
        # A party the log never names is a typo, not "no events": refused, naming those
        # it does name.
        choice("--agency", agency, parties)
    except OptionError as exc:
        raise exc.exit(as_json=as_json) from None
    if as_json:
        typer.echo(msgspec.json.encode(
            [{"index": pos, **msgspec.to_builtins(e)} for pos, e in out]).decode())
        return
    from clients.cli.render import plain

    console = Console()
    if not out:
        console.print("no events")
        return
    table = Table(title=f"{len(out)} event(s)", title_justify="left")
    for col in ("#", "at", "type", "actor", "counterpart", "message", "rule", "reason"):
        table.add_column(col)
    for pos, e in out:
        table.add_row(str(pos), f"{e.at:%Y-%m-%d %H:%M:%S}", str(e.type), plain(e.actor),
                      plain(e.counterpart or ""), plain(e.message_id or ""),
                      plain(e.rule or ""), plain(e.reason or ""))
    console.print(table)
