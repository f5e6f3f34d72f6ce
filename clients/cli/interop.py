"""`orcon export stix|misp ID` and `orcon import stix|misp FILE`.

Export is a use: it is declared to the broker (checked against the originator's
restrictions and audited) before anything is written. Import never sends anything: it
writes a draft (header fields and an intel_report body) for the officer to review."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

import schemas
from clients.cli.life import AsAgency, DataDir, _run

if TYPE_CHECKING:
    from clients.interop.export import Exported, Format
    from clients.sdk.holder import Holder

err = Console(stderr=True)

export_app = typer.Typer(help="Export a message from the local store as STIX 2.1 or MISP "
                         "(declared to the broker as a use; refused when the originator's "
                         "restrictions forbid it).", no_args_is_help=True)
import_app = typer.Typer(help="Turn a STIX 2.1 bundle or MISP event into a draft orcon "
                         "message for review (nothing is sent).", no_args_is_help=True)

Out = Annotated[Path | None, typer.Option("--output", "-o", help="write here (default: stdout)")]
Purpose = Annotated[schemas.Purpose, typer.Option(help="what the export is for (must be "
                                                  "among the originator's purposes)")]


def _write(data: bytes, out: Path | None) -> None:
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        out.write_bytes(data)


def _export(fmt: Format, data_dir: Path, agency: str, message_id: str,
            purpose: schemas.Purpose, note: str | None, out: Path | None) -> None:
    from clients.interop.export import export_message

    async def act(h: Holder) -> Exported:
        return await export_message(h, message_id, fmt, purpose, note=note)

    exported = _run(data_dir, agency, act)
    _write(exported.data, out)
    said = (f"export declared: {exported.declaration.id}" if exported.declaration
            else "your own message: no declaration needed")
    if exported.distribution is not None:
        said += f"; MISP distribution {exported.distribution}"
    err.print(said)


@export_app.command("stix")
def export_stix(data_dir: DataDir, as_agency: AsAgency,
                message_id: Annotated[str, typer.Argument(help="the message to export")],
                purpose: Purpose, note: Annotated[str | None, typer.Option()] = None,
                output: Out = None) -> None:
    """A STIX 2.1 bundle: TLP 2.0 and orcon markings on every object."""
    _export("stix", data_dir, as_agency, message_id, purpose, note, output)


@export_app.command("misp")
def export_misp(data_dir: DataDir, as_agency: AsAgency,
                message_id: Annotated[str, typer.Argument(help="the message to export")],
                purpose: Purpose, note: Annotated[str | None, typer.Option()] = None,
                output: Out = None) -> None:
    """A MISP event: tlp, PAP, admiralty-scale and orcon tags; distribution no wider
    than the restrictions allow."""
    _export("misp", data_dir, as_agency, message_id, purpose, note, output)


def _import(fmt: Format, file: Path, out: Path | None) -> None:
    from clients.interop.importer import InteropImportError, encode_draft, from_misp, from_stix
    from clients.interop.markings import MarkingConflict

    try:
        data = file.read_bytes()
        draft = from_stix(data) if fmt == "stix" else from_misp(data)
    except OSError as exc:
        err.print(f"[red]error:[/] {escape(str(file))}: {escape(str(exc.strerror))}")
        raise typer.Exit(1) from None
    except (InteropImportError, MarkingConflict) as exc:
        # the message quotes the file's content: never read as markup
        err.print(f"[red]error:[/] {escape(str(file))}: {escape(str(exc))}")
        raise typer.Exit(1) from None
    _write(encode_draft(draft), out)
    r = draft.header.restrictions
    err.print(f"draft (not sent): level {draft.header.level}, TLP {r.tlp or 'none'}; "
              f"{len(draft.body.persons)} person(s)")
    for u in draft.unknown_markings:
        err.print(f"[yellow]unknown marking, treated as most restrictive:[/] {escape(u)}",
                  highlight=False)


@import_app.command("stix")
def import_stix(file: Annotated[Path, typer.Argument(help="a STIX 2.1 bundle (JSON)")],
                output: Out = None) -> None:
    """A draft from a STIX 2.1 bundle; its markings only tighten the restrictions."""
    _import("stix", file, output)


@import_app.command("misp")
def import_misp(file: Annotated[Path, typer.Argument(help="a MISP event (JSON)")],
                output: Out = None) -> None:
    """A draft from a MISP event; its tags and distribution only tighten."""
    _import("misp", file, output)


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
    app.add_typer(import_app, name="import")
