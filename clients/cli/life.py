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
from rich.table import Table

import schemas
from clients.cli.common import AsAgency, DataDir, Json, console, emit, with_holder
from schemas.codes import ConsentScope, UseKind

if TYPE_CHECKING:
    from clients.sdk.holder import Holder, RequestStatus

__all__ = ["AsAgency", "DataDir", "register", "store_path", "tightened", "unread_notice"]

T = TypeVar("T")

consent_app = typer.Typer(help="Ask for, grant or refuse the originator's consent.",
                          no_args_is_help=True)
alerts_app = typer.Typer(help="Focal points' alerts.", no_args_is_help=True)


def store_path(data_dir: Path, agency: str) -> Path:
    return data_dir / "stores" / f"{agency}.db"


def unread_notice(count: int, data_dir: Path, agency: str) -> str:
    """What a command that fetched deliveries without showing them says about them."""
    them = "it" if count == 1 else "them"
    return (f"{count} new message{'s' if count != 1 else ''} unread: "
            f"`orcon inbox -d {data_dir} --as {agency}` shows {them} "
            f"(and acknowledges {them})")


def _run(data_dir: Path, agency: str, action: Callable[[Holder], Awaitable[T]],
         as_json: bool = False) -> T:
    """Open the Holder, fetch, act, close; errors as one line and the exit codes of
    docs/cli.md (a refusal by a restriction exits 2, an unreachable stack 3)."""
    return with_holder(data_dir, agency, action, as_json=as_json)


def _say(as_json: bool, doc: dict[str, object], text: str) -> None:
    """The command's result: its JSON document, or one line for a person."""
    if as_json:
        emit(doc)
    else:
        console.print(text, markup=False, highlight=False)


def _act(data_dir: Path, agency: str, as_json: bool,
         act: Callable[[Holder], Awaitable[schemas.Header]],
         doc: Callable[[schemas.Header], dict[str, object]],
         line: Callable[[schemas.Header], str]) -> None:
    """Every act command: do one signed act through the Holder, then say what was sent
    (`doc` with --json, else `line`), both built from the act's signed header."""
    async def run(h: Holder) -> None:
        sent = await act(h)
        _say(as_json, doc(sent), line(sent))
    _run(data_dir, agency, run, as_json)


def _change(data_dir: Path, agency: str, as_json: bool, message_id: str, kind: str,
            act: Callable[[Holder], Awaitable[schemas.Header]], consequence: str) -> None:
    """`amend` and `withdraw`: the originator's change, sent to every holder, each of
    which does `consequence` on its next sync."""
    _act(data_dir, agency, as_json, act,
         lambda sent: {"id": sent.id, "message_id": message_id, "act": kind,
                       "to": list(sent.recipients)},
         lambda sent: f"{kind} {sent.id} of {message_id} sent to: "
                      f"{', '.join(sent.recipients)}; each {consequence} on its next sync")


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
    as_json: Json = False,
) -> None:
    """Declare a use; refused, naming the restriction, when the originator forbids it."""
    _act(data_dir, as_agency, as_json,
         lambda h: h.use(message_id, purpose, evidential, note, use=kind),
         lambda sent: {"id": sent.id, "message_id": message_id, "act": "use_declaration"},
         lambda sent: f"use declared: {sent.id}")


@consent_app.command("request")
def consent_request(
    data_dir: DataDir, as_agency: AsAgency,
    message_id: Annotated[str, typer.Argument()],
    action: Annotated[ConsentScope, typer.Option(help="what the consent would allow")],
    justification: Annotated[str, typer.Option()],
    to: Annotated[str | None, typer.Option(help="third party (onward_dissemination)")] = None,
    as_json: Json = False,
) -> None:
    """Ask the originator to allow one action (for forwarding: to one third party)."""
    _act(data_dir, as_agency, as_json,
         lambda h: h.request_consent(message_id, action, to=to, justification=justification),
         lambda sent: {"id": sent.id, "message_id": message_id, "act": "consent_request"},
         lambda sent: f"consent requested: {sent.id}")


def _decision(data_dir: Path, agency: str, as_json: bool, request_id: str, decision: str,
              act: Callable[[Holder], Awaitable[schemas.Header]]) -> None:
    """`consent grant` and `consent refuse`: the originator's signed decision."""
    _act(data_dir, agency, as_json, act,
         lambda sent: {"id": sent.id, "request": request_id, "act": "consent_decision",
                       "decision": decision},
         lambda sent: f"consent {decision}: {sent.id}")


@consent_app.command("grant")
def consent_grant(
    data_dir: DataDir, as_agency: AsAgency,
    request_id: Annotated[str, typer.Argument()],
    condition: Annotated[list[str] | None, typer.Option(help="repeatable")] = None,
    valid_days: Annotated[int | None, typer.Option(min=1)] = None,
    as_json: Json = False,
) -> None:
    """Grant a consent request (as the originator), with conditions and an expiry."""
    until = datetime.now(UTC) + timedelta(days=valid_days) if valid_days else None
    _decision(data_dir, as_agency, as_json, request_id, "granted",
              lambda h: h.grant(request_id, conditions=condition or [], valid_until=until))


@consent_app.command("refuse")
def consent_refuse(
    data_dir: DataDir, as_agency: AsAgency,
    request_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option()],
    as_json: Json = False,
) -> None:
    """Refuse a consent request, with the reason."""
    _decision(data_dir, as_agency, as_json, request_id, "refused",
              lambda h: h.refuse(request_id, reason))


def forward(
    data_dir: DataDir, as_agency: AsAgency,
    message_id: Annotated[str, typer.Argument()],
    to: Annotated[str, typer.Option(help="the third party")],
    as_json: Json = False,
) -> None:
    """Forward through the broker; it checks H2, consent and policy and explains refusals."""
    async def act(h: Holder) -> None:
        outcome = await h.forward(message_id, to)
        _say(as_json, {"message_id": message_id, "to": to,
                       "delivered": list(outcome.delivered)},
             f"forwarded to {to} ({', '.join(outcome.delivered)})")
    _run(data_dir, as_agency, act, as_json)


def purge(data_dir: DataDir, as_agency: AsAgency, as_json: Json = False) -> None:
    """Destroy expired messages from the local store, each with a signed purge receipt."""
    async def act(h: Holder) -> list[str]:
        return await h.purge()
    purged = _run(data_dir, as_agency, act, as_json)
    _say(as_json, {"purged": purged},
         f"purged {len(purged)} message(s)" + (f": {', '.join(purged)}" if purged else ""))


def requests(
    data_dir: DataDir, as_agency: AsAgency,
    overdue: Annotated[bool, typer.Option("--overdue", help="only overdue ones")] = False,
    as_json: Json = False,
) -> None:
    """Requests sent and received, with their deadlines; overdue ones in red."""
    async def act(h: Holder) -> list[RequestStatus]:
        return h.requests(overdue_only=overdue)
    rows = _run(data_dir, as_agency, act, as_json)
    if as_json:
        emit([{"id": r.id, "kind": r.kind, "direction": r.direction,
               "counterpart": r.counterpart, "due_at": r.due_at,
               "answered_at": r.answered_at, "overdue": r.overdue} for r in rows])
        return
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
    from clients.sdk.alerts import watch

    async def act(h: Holder) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await watch(h, console, stop)
    _run(data_dir, as_agency, act)


def tightened(current: schemas.Restrictions, *, expires_in_days: int | None = None,
              expires_at: datetime | None = None, destroy_after_days: int | None = None,
              purposes: list[schemas.Purpose] | None = None, exclude: list[str] | None = None,
              release_to: list[str] | None = None, conditions: list[str] | None = None,
              tlp: schemas.TLP | None = None, flags: tuple[str, ...] = (),
              now: datetime | None = None, lang: str = "en") -> schemas.Restrictions:
    """The restrictions in force with the options of `orcon amend` applied: `purposes`
    and `release_to` replace (narrower lists), `exclude` and `conditions` add, flags
    set. Whether the result only tightens is checked by `Holder.amend` and the broker."""
    import msgspec

    now = now or datetime.now(UTC)
    changes: dict[str, object] = {f: True for f in flags}
    if expires_in_days is not None:
        expires_at = now + timedelta(days=expires_in_days)
    if expires_at is not None:
        changes["expires_at"] = expires_at
    if destroy_after_days is not None:
        changes["destroy_after_days"] = destroy_after_days
    if purposes:
        changes["purposes"] = sorted(set(purposes))
    if release_to:
        changes["release_to"] = sorted(set(release_to))
    if exclude:
        changes["exclude"] = sorted(set(current.exclude) | set(exclude))
    if conditions:
        changes["conditions"] = [*current.conditions,
                                 *(schemas.Condition(c, lang) for c in conditions)]
    if tlp is not None:
        changes["tlp"] = tlp
    return msgspec.structs.replace(current, **changes)


def amend(
    data_dir: DataDir, as_agency: AsAgency,
    message_id: Annotated[str, typer.Argument(help="a message this agency sent")],
    expires_in_days: Annotated[int | None, typer.Option(min=1, help="new, earlier expiry")]
    = None,
    destroy_after_days: Annotated[int | None, typer.Option(min=1)] = None,
    purpose: Annotated[list[schemas.Purpose] | None, typer.Option(
        help="the purposes still allowed (repeatable; narrower than before)")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="add an exclusion (repeatable)")]
    = None,
    release_to: Annotated[list[str] | None, typer.Option(
        "--release-to", help="narrower release list (repeatable)")] = None,
    condition: Annotated[list[str] | None, typer.Option(help="add a condition")] = None,
    tlp: Annotated[schemas.TLP | None, typer.Option()] = None,
    no_onward: Annotated[bool, typer.Option("--no-onward-dissemination")] = False,
    no_evidential: Annotated[bool, typer.Option("--no-evidential-use")] = False,
    no_public: Annotated[bool, typer.Option("--no-public-disclosure")] = False,
    not_to_suspects: Annotated[bool, typer.Option("--not-to-suspects")] = False,
    consult: Annotated[bool, typer.Option("--consult-before-action")] = False,
    reason: Annotated[str | None, typer.Option()] = None,
    as_json: Json = False,
) -> None:
    """Tighten the restrictions of a message you sent; every holder applies them on its
    next sync and signs a receipt. A change that loosens anything is refused."""
    flags = tuple(name for name, on in (
        ("no_onward_dissemination", no_onward), ("no_evidential_use", no_evidential),
        ("no_public_disclosure", no_public), ("not_to_suspects", not_to_suspects),
        ("consult_before_action", consult)) if on)

    async def act(h: Holder) -> schemas.Header:
        new = tightened(h.get(message_id).restrictions, expires_in_days=expires_in_days,
                        destroy_after_days=destroy_after_days, purposes=purpose,
                        exclude=exclude, release_to=release_to, conditions=condition,
                        tlp=tlp, flags=flags, now=h.now)
        return await h.amend(message_id, new, reason=reason)
    _change(data_dir, as_agency, as_json, message_id, "amendment", act, "applies it")


def withdraw(
    data_dir: DataDir, as_agency: AsAgency,
    message_id: Annotated[str, typer.Argument(help="a message this agency sent")],
    reason: Annotated[str, typer.Option(help="why (sent to the holders)")],
    as_json: Json = False,
) -> None:
    """Withdraw a message you sent: every holder destroys its copy on its next sync and
    signs a purge receipt."""
    _change(data_dir, as_agency, as_json, message_id, "withdrawal",
            lambda h: h.withdraw(message_id, reason), "destroys its copy")


def compliance(
    data_dir: DataDir, as_agency: AsAgency,
    message_id: Annotated[str, typer.Argument(help="a message this agency sent")],
    as_json: Json = False,
) -> None:
    """Which holders have applied your amendments and withdrawals (signed receipts)."""
    async def act(h: Holder) -> list[tuple[str, str, datetime | None]]:
        return h.compliance(message_id)
    rows = _run(data_dir, as_agency, act, as_json)
    if as_json:
        emit([{"change": change, "holder": holder, "complied_at": at}
              for holder, change, at in rows])
        return
    table = Table(title=f"changes to {message_id}", title_justify="left")
    for col in ("change", "holder", "complied"):
        table.add_column(col)
    for holder, change, at in rows:
        table.add_row(change, holder, f"{at:%Y-%m-%d %H:%M}Z" if at else "[red]not yet[/]")
    console.print(table if rows else "no amendments or withdrawals")


def register(app: typer.Typer) -> None:
    """Adds this module's commands to the main `orcon` app."""
    app.command("use")(use)
    app.command("forward")(forward)
    app.command("purge")(purge)
    app.command("requests")(requests)
    app.command("amend")(amend)
    app.command("withdraw")(withdraw)
    app.command("compliance")(compliance)
    app.add_typer(consent_app, name="consent")
    app.add_typer(alerts_app, name="alerts")
