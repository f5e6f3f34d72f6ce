"""Focal points' live alert view: alerts as they arrive, restrictions always visible.

The table shows the title (the focal point is a recipient: the content is its own to
read) next to the restrictions that bind it, so nobody acts on an alert without seeing
them. Nothing here is logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

import schemas
from clients.sdk.holder import Holder
from clients.sdk.store import Row


def restriction_summary(r: schemas.Restrictions) -> str:
    r = r.expanded()
    parts = []
    if r.tlp is not None:
        parts.append(f"TLP:{r.tlp}")
    if r.purposes:
        parts.append("purposes " + ",".join(str(p) for p in r.purposes))
    for flag, label in ((r.no_evidential_use, "no evidence"),
                        (r.no_onward_dissemination, "no onward"),
                        (r.no_public_disclosure, "no public"),
                        (r.not_to_suspects, "not to suspects"),
                        (r.consult_before_action, "consult first")):
        if flag:
            parts.append(label)
    if r.expires_at is not None:
        parts.append(f"until {r.expires_at:%Y-%m-%d %H:%M}Z")
    return "; ".join(parts) or "none"


def alerts_table(rows: Sequence[Row]) -> Table:
    table = Table(title="alerts", title_justify="left", expand=True)
    for col in ("received", "id", "from", "urgency", "title", "restrictions"):
        table.add_column(col, overflow="fold")
    style = {"urgent": "bold red", "priority": "yellow"}
    for row in sorted(rows, key=lambda r: r.received_at, reverse=True):
        h, body = row.header, row.body
        title = getattr(body, "title", "")
        # Text cells, not markup: a title is sender-supplied and must not style the view.
        table.add_row(Text(f"{row.received_at:%H:%M:%S}"), Text(row.id), Text(h.sender),
                      Text(str(h.urgency), style=style.get(str(h.urgency), "")),
                      Text(str(title)), Text(restriction_summary(row.restrictions)))
    return table


def stored_alerts(holder: Holder, limit: int = 50) -> list[Row]:
    return list(holder.store.query("kind = 'alert'"))[-limit:]


def others_line(holder: Holder) -> Text:
    """New deliveries other than alerts, counted with the command that shows them: the
    watch fetches them too (one fetch path) and must not leave them unseen."""
    n = sum(1 for r in holder.unread() if r.kind != "alert")
    if not n:
        return Text("")
    return Text(f"{n} other new message{'s' if n != 1 else ''} unread: "
                f"`orcon inbox --as {holder.agency}` shows "
                f"{'it' if n == 1 else 'them'}", style="yellow")


async def watch(holder: Holder, console: Console, stop: asyncio.Event,
                poll: float = 1.0) -> None:
    """Sync and redraw until `stop` is set. An alert shown is an alert opened: its
    first showing signs the acknowledgment of its restrictions (audited)."""

    async def view() -> Group:
        for r in holder.unread():
            if r.kind == "alert":
                await holder.open(r.id)
        return Group(alerts_table(stored_alerts(holder)), others_line(holder))

    with Live(await view(), console=console, refresh_per_second=4) as live:
        while not stop.is_set():
            got = await holder.sync(timeout=poll)
            if got.new or got.reminders:
                live.update(await view())
