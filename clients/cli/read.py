"""Reading from the command line: `orcon list`, `orcon show ID`, `orcon whoami`,
`orcon agencies`. `list` and `show` read the agency's encrypted store after fetching
what is new; `whoami` and `agencies` read connection.json and the federation offline."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

import schemas
from clients.cli.common import (
    INVALID,
    AsAgency,
    CliError,
    DataDir,
    Json,
    OptionError,
    choice,
    console,
    emit,
    run,
    shaped,
    with_holder,
)
from clients.cli.render import body_sections, plain, restriction_lines
from clients.sdk.holder import STATES

if TYPE_CHECKING:
    from clients.sdk.holder import Holder
    from clients.sdk.store import Row

def _row_doc(h: Holder, row: Row) -> dict[str, Any]:
    from clients.sdk.holder import REQUEST_KINDS

    header = row.header
    r = row.restrictions
    # A request's `respond_by` is its due date (`DeadlinePolicy.due`, stored as `due_at`).
    due = row.due_at
    return {
        "id": row.id, "direction": row.direction, "kind": row.kind, "from": row.sender,
        "to": list(header.recipients), "state": h.state(row),
        "category": str(header.category), "level": str(header.level),
        "tlp": str(r.tlp) if r.tlp else None, "urgency": str(header.urgency),
        "deadline": due, "overdue": bool(due and row.answered_at is None and due < h.now
                                         and row.kind in REQUEST_KINDS),
        "answered": row.answered_at is not None, "in_reply_to": header.in_reply_to,
        "received_at": row.received_at, "expires_at": row.expires_at,
    }


def list_cmd(
    data_dir: DataDir,
    as_agency: AsAgency,
    direction: Annotated[str | None, typer.Option(
        help="in (received) or out (sent)")] = None,
    kind: Annotated[str | None, typer.Option(help="only this message kind")] = None,
    state: Annotated[str | None, typer.Option(help=f"only this state: {', '.join(STATES)}")]
    = None,
    sender: Annotated[str | None, typer.Option("--from", help="only from this agency")] = None,
    urgent: Annotated[bool, typer.Option("--urgent", help="only urgent ones")] = False,
    overdue: Annotated[bool, typer.Option("--overdue", help="only overdue requests")] = False,
    acts: Annotated[bool, typer.Option("--acts", help="acts too (acknowledgments, use "
                                       "declarations, consents...)")] = False,
    as_json: Json = False,
) -> None:
    """Messages received and sent, with state, level, TLP, urgency and deadline; newest
    first. Fetches what is new first, without opening it (`orcon show ID` opens)."""
    from policies.acts import ACT_KINDS
    from schemas.bodies import KINDS
    from schemas.ids import PARTY_NAME_PATTERN

    try:
        choice("--direction", direction, ("in", "out"))
        choice("--state", state, STATES)
        choice("--kind", kind, KINDS)
        shaped("--from", sender, PARTY_NAME_PATTERN,
               "an agency id (capitals, digits and hyphens, e.g. KH-AHTJP)")
    except OptionError as exc:
        raise exc.exit(as_json=as_json) from None

    async def act(h: Holder) -> list[dict[str, Any]]:
        if sender is not None:
            # Any agency of the directory, or one that sent what this store holds (an
            # agency since removed); anything else is a typo, not "no messages".
            known = set(h.client.directory.agencies()) | h.store.senders()
            choice("--from", sender, known)
        docs = []
        for row in reversed(list(h.store.query())):  # newest first
            if ((not acts and row.kind in ACT_KINDS) or (direction and row.direction != direction)
                    or (kind and row.kind != kind) or (sender and row.sender != sender)):
                continue
            doc = _row_doc(h, row)
            if ((state and doc["state"] != state) or (urgent and doc["urgency"] != "urgent")
                    or (overdue and not doc["overdue"])):
                continue
            docs.append(doc)
        return docs

    docs = with_holder(data_dir, as_agency, act, as_json=as_json)
    if as_json:
        emit(docs)
        return
    if not docs:
        console.print("no messages")
        return
    table = Table(title=f"messages of {as_agency}", title_justify="left")
    for col in ("id", "dir", "kind", "from/to", "state", "level", "TLP", "urgency",
                "deadline"):
        table.add_column(col, no_wrap=col == "id")
    for d in docs:
        party = d["from"] if d["direction"] == "in" else ", ".join(d["to"])
        due = f"{d['deadline']:%Y-%m-%d %H:%M}Z" if d["deadline"] else ""
        table.add_row(plain(d["id"]), d["direction"], plain(d["kind"]), plain(party),
                      Text(d["state"], style="bold" if d["state"] == "new" else ""),
                      d["level"], d["tlp"] or "", Text(d["urgency"], style="red" if
                                                       d["urgency"] == "urgent" else ""),
                      Text(due + (" overdue" if d["overdue"] else ""),
                           style="red" if d["overdue"] else ""))
    console.print(table)


def show(
    data_dir: DataDir,
    as_agency: AsAgency,
    message_id: Annotated[str, typer.Argument(help="a message in the agency's store")],
    as_json: Json = False,
) -> None:
    """One message: the originator's restrictions first, then who, when and what, the
    body as readable sections. Opening a received message acknowledges it (signed,
    audited), as `orcon inbox` does."""

    async def act(h: Holder) -> tuple[Row, dict[str, Any]]:
        row = await h.open(message_id)
        return row, _row_doc(h, row)

    row, doc = with_holder(data_dir, as_agency, act, as_json=as_json)
    header = row.header
    binding = schemas.effective_restrictions(row.restrictions)
    if as_json:
        emit({**doc, "header": msgspec.to_builtins(header),
              "restrictions": msgspec.to_builtins(binding),
              "body": msgspec.to_builtins(row.body)})
        return
    restrictions = Panel(plain("\n".join(restriction_lines(row.restrictions)),
                               style="bold yellow"),
                         title="ORIGINATOR'S RESTRICTIONS (Art. 10(2))", border_style="red")
    meta = Table.grid(padding=(0, 2))
    meta.add_column(style="bold")
    meta.add_column()
    rows: list[tuple[str, str | None]] = [
        ("id", header.id), ("state", doc["state"]), ("from", header.sender),
        ("to", ", ".join(header.recipients)), ("kind", str(header.kind)),
        ("category", f"Art. 10(1)({header.category})"), ("level", str(header.level)),
        ("urgency", str(header.urgency) + (f" ({', '.join(map(str, header.urgency_reasons))})"
                                           if header.urgency_reasons else "")),
        ("created", f"{header.created_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("in reply to", header.in_reply_to), ("thread", header.thread),
        ("deadline", f"{doc['deadline']:%Y-%m-%d %H:%M} UTC" if doc["deadline"] else None),
        ("evaluation", f"{header.evaluation.source}{int(header.evaluation.accuracy)}"
         if header.evaluation else None),
        ("languages", ", ".join(header.languages) or None),
    ]
    for label, value in rows:
        if value:
            meta.add_row(label, plain(value))
    content = Panel(plain(body_sections(row.body)), title="content")
    console.print(Panel(Group(restrictions, meta, content),
                        title=plain(f"message {header.id}"), border_style="cyan"))


def _federation(data_dir: Path) -> tuple[Any, Any]:
    from policies.federation import load_federation
    from transport.connection import load_connection

    conn = load_connection(data_dir)
    return conn, load_federation(Path(conn.federation))


def _groups_of(fed: Any, agency: Any) -> list[str]:
    named = {g.id for g in fed.groups if agency.id in g.members or agency.country in g.members}
    return sorted(named | set(agency.groups))


def _agency_doc(fed: Any, a: Any) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "country": a.country, "type": str(a.type),
            "roles": [str(r) for r in a.roles], "clearance": str(a.clearance),
            "groups": _groups_of(fed, a)}


def whoami(data_dir: DataDir, as_agency: AsAgency, as_json: Json = False) -> None:
    """Who you act as: agency, country, roles, clearance, groups, current signing key."""
    from keys.directory import Directory

    async def look() -> dict[str, Any]:
        conn, fed = _federation(data_dir)
        me = next((a for a in fed.agencies if a.id == as_agency), None)
        if me is None:
            raise CliError(f"--as {as_agency}: not an agency of this federation (agencies: "
                           f"{', '.join(sorted(a.id for a in fed.agencies))})", INVALID)
        doc = {"agency": me.id, **_agency_doc(fed, me)}
        directory = Directory.load(Path(conn.directory).read_bytes(),
                                   bytes.fromhex(conn.root_public))
        entry = directory.entry(as_agency)
        now = datetime.now(entry.issued_at.tzinfo)
        keys = [k.key_id for k in entry.sign_keys if k.valid_at(now)]
        doc.update(signing_key=keys[-1] if keys else None, url=conn.url,
                   store=str(data_dir / "stores" / f"{as_agency}.db"),
                   can_receive=conn.agencies.get(as_agency) is not None
                   and conn.agencies[as_agency].key is not None)
        return doc

    doc = run(look, data_dir, as_json=as_json)
    if as_json:
        emit(doc)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for k in ("id", "name", "country", "type", "roles", "clearance", "groups",
              "signing_key", "url", "store"):
        v = doc[k]
        grid.add_row(k.replace("_", " "), plain(", ".join(v) if isinstance(v, list)
                                                else str(v)))
    console.print(grid)


def agencies(data_dir: DataDir, as_json: Json = False) -> None:
    """The federation's agencies: id, name, country, roles, clearance, groups."""

    async def look() -> list[dict[str, Any]]:
        _, fed = _federation(data_dir)
        return [_agency_doc(fed, a) for a in sorted(fed.agencies, key=lambda a: a.id)]

    docs = run(look, data_dir, as_json=as_json)
    if as_json:
        emit(docs)
        return
    table = Table(title="agencies", title_justify="left")
    for col in ("id", "name", "country", "roles", "clearance", "groups"):
        table.add_column(col)
    for d in docs:
        table.add_row(*(plain(", ".join(d[c]) if isinstance(d[c], list) else str(d[c]))
                        for c in ("id", "name", "country", "roles", "clearance", "groups")))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the main `orcon` app."""
    app.command("list")(list_cmd)
    app.command("show")(show)
    app.command("whoami")(whoami)
    app.command("agencies")(agencies)
