"""What the console shows and does, on top of the SDK (`clients.sdk.holder.Holder`).

One `Desk` per console process: the agency's Holder (its identity, its NATS
connection, its encrypted store) lives here and never leaves the process; pages get
views built from store rows. A background task syncs deliveries into the store and
tells open pages (server-sent events) the ids of what arrived; ids only, so the event
stream carries no content.

`AuditDesk` is the auditor's: an auditor has no identity and receives no content, it
fetches the log, verifies it and renders the report.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import structlog

import schemas
from broker.audit.report import render_report
from broker.audit.store import read_bundle
from broker.audit.verify import VerifyReport, verify_bundle
from clients.sdk.auditor import fetch_bundle
from clients.sdk.holder import REQUEST_KINDS, STATES, Holder, LifecycleError
from clients.sdk.store import Row
from policies.acts import ACT_KINDS
from policies.federation import Federation
from transport.connection import Connection

log = structlog.get_logger("orcon.console")

__all__ = ["STATES", "AuditDesk", "Desk", "MessageView", "restrictions_in_words"]

# What each filter of the inbox and outbox may be (an empty value: no filter).
FILTERS: dict[str, frozenset[str]] = {
    "kind": schemas.bodies.KINDS,
    "state": frozenset(STATES),
    "level": frozenset(str(v) for v in schemas.Level),
    "tlp": frozenset(str(v) for v in schemas.TLP) | {"none"},
    "urgency": frozenset(str(v) for v in schemas.Urgency),
}


@dataclass(frozen=True)
class MessageView:
    """One line of the inbox or outbox, or the head of a message page."""

    row: Row
    state: str
    title: str
    counterpart: str
    deadline: datetime | None
    overdue: bool
    progress: str = ""  # sent messages: what the recipients did

    @property
    def header(self) -> schemas.Header:
        return self.row.header

    @property
    def tlp(self) -> str:
        t = self.row.restrictions.tlp
        return str(t) if t is not None else "none"


def restrictions_in_words(r: schemas.Restrictions, originator: str) -> list[tuple[str, str]]:
    """Each restriction that binds the holder: (rule, one plain sentence)."""
    e = r.expanded()
    preset = f" (TLP:{r.tlp})" if r.tlp is not None else ""
    out: list[tuple[str, str]] = []
    if r.tlp is not None:
        meaning = {
            "RED": "for the named recipients only; no further disclosure",
            "AMBER+STRICT": "within the recipient's own organization only",
            "AMBER": "need-to-know within the recipient's organization and its clients",
            "GREEN": "within the community (the federation), never public",
            "CLEAR": "no restriction on disclosure",
        }[str(r.tlp)]
        out.append(("restriction.tlp", f"TLP:{r.tlp}, {meaning}."))
    if e.purposes:
        out.append(("restriction.purpose", "Use only for: "
                    + ", ".join(str(p).replace("_", " ") for p in e.purposes) + "."))
    if e.no_evidential_use:
        out.append(("restriction.no_evidential_use",
                    f"Not as evidence without {originator}'s consent."))
    if e.no_onward_dissemination:
        out.append(("restriction.no_onward_dissemination",
                    f"Do not pass to any third party without {originator}'s consent{preset}."))
    if e.no_public_disclosure:
        out.append(("restriction.no_public_disclosure", f"Never disclose publicly{preset}."))
    if e.not_to_suspects:
        out.append(("restriction.not_to_suspects",
                    f"Never disclose to the suspects or their counsel{preset}."))
    if e.consult_before_action:
        out.append(("restriction.consult_before_action",
                    f"Consult {originator} before any executive action."))
    if e.release_to:
        out.append(("restriction.release_to",
                    "Releasable only to: " + ", ".join(e.release_to) + "."))
    if e.exclude:
        out.append(("restriction.exclude", "Never to: " + ", ".join(e.exclude) + "."))
    if e.not_before is not None:
        out.append(("restriction.not_before",
                    f"Not to be used before {e.not_before:%Y-%m-%d %H:%M} UTC."))
    if e.expires_at is not None:
        out.append(("restriction.expires_at",
                    f"Use ends {e.expires_at:%Y-%m-%d %H:%M} UTC; then it is destroyed."))
    if e.destroy_after_days is not None:
        out.append(("restriction.destroy_after_days",
                    f"Destroy {e.destroy_after_days} days after receipt."))
    for c in e.conditions:
        out.append(("restriction.condition", f"Condition ({c.lang}): {c.text}"))
    return out


def _title(row: Row) -> str:
    body = row.body
    if isinstance(body, schemas.Reply):
        return f"Reply: {str(body.status).replace('_', ' ')}"
    for attr in ("title", "subject_matter", "grounds", "purpose", "justification",
                 "narrative"):
        v = getattr(body, attr, None)
        if isinstance(v, str) and v:
            return v
        text = getattr(v, "text", None)
        if isinstance(text, str) and text:
            return text
    return row.kind.replace("_", " ")


class Desk:
    """The agency's desk: a Holder, its lock, its live feed."""

    def __init__(self, holder: Holder, conn: Connection,
                 federation: Federation | None = None) -> None:
        self.holder = holder
        self.conn = conn
        self.federation = federation
        self.agency = holder.agency
        # One act at a time: acts wait for the broker's outcome on one subscription.
        self.lock = asyncio.Lock()
        self._listeners: set[asyncio.Queue[tuple[str, str]]] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def roles(self) -> list[str]:
        try:
            return list(self.holder.client.directory.entry(self.agency).roles)
        except Exception:
            return []

    # ---- live feed ---------------------------------------------------------------------

    def start(self, poll: float = 0.5) -> None:
        self._task = asyncio.create_task(self._sync_loop(poll))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sync_loop(self, poll: float, purge_every: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        next_purge = loop.time() + purge_every
        while True:
            if loop.time() >= next_purge:
                # What expires while the console runs is destroyed (with signed purge
                # receipts) as the CLI does at each start; not left readable until restart.
                next_purge = loop.time() + purge_every
                try:
                    async with self.lock:
                        await self.holder.purge()
                except Exception as exc:
                    log.warning("console_purge_failed", error=type(exc).__name__)
            try:
                got = await self.holder.sync(timeout=poll)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a NATS hiccup: say so (no content), retry
                log.warning("console_sync_failed", error=type(exc).__name__)
                await asyncio.sleep(poll)
                continue
            for row in got.new:
                self._publish("alert" if row.kind == "alert" else "message", row.id)
            for mid in got.reminders:
                self._publish("reminder", mid)
            for rej in got.rejected:
                log.warning("console_delivery_rejected", message_id=rej.message_id)

    def _publish(self, event: str, message_id: str) -> None:
        for q in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait((event, message_id))

    def listen(self) -> asyncio.Queue[tuple[str, str]]:
        q: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=100)
        self._listeners.add(q)
        return q

    def unlisten(self, q: asyncio.Queue[tuple[str, str]]) -> None:
        self._listeners.discard(q)

    # ---- views -------------------------------------------------------------------------

    def _related(self, message_id: str) -> list[Row]:
        return list(self.holder.store.query("about = ?", (message_id,)))

    def state(self, row: Row, related: Iterable[Row] | None = None) -> str:
        """Where a message stands: the SDK's one rule (`Holder.state`), as `orcon list`."""
        return self.holder.state(row, related)

    def view(self, row: Row) -> MessageView:
        h = row.header
        now = self.holder.now
        deadline = row.due_at or h.restrictions.expires_at
        overdue = (row.kind in REQUEST_KINDS and row.answered_at is None
                   and row.due_at is not None and now > row.due_at)
        counterpart = ", ".join(h.recipients) if row.direction == "out" else h.sender
        related = self._related(row.id)
        progress = ""
        if row.direction == "out":
            acked = {r.sender for r in related if r.kind == "acknowledgment"}
            used = {r.sender for r in related if r.kind == "use_declaration"}
            progress = f"acknowledged by {len(acked)} of {len(h.recipients)}"
            if used:
                progress += f" · used by {', '.join(sorted(used))}"
        return MessageView(row, self.state(row, related), _title(row), counterpart, deadline,
                           overdue, progress)

    def messages(self, direction: str, *, q: str = "", kind: str = "", state: str = "",
                 level: str = "", tlp: str = "", urgency: str = "") -> list[MessageView]:
        """The inbox ("in") or outbox ("out"), filtered. A filter value outside its
        vocabulary is refused (LifecycleError `filter.<name>`), never read as "nothing
        matches": a mistyped address would show an empty inbox."""
        for name, value in (("kind", kind), ("state", state), ("level", level),
                            ("tlp", tlp), ("urgency", urgency)):
            valid = FILTERS[name]
            if value and value not in valid:
                raise LifecycleError(f"filter.{name}", f"{value!r} is not a {name}: one of "
                                     f"{', '.join(sorted(valid))}")
        acts = ",".join(f"'{k}'" for k in sorted(ACT_KINDS))  # constants, not input
        rows = self.holder.store.query(f"direction = ? AND kind NOT IN ({acts})",
                                       (direction,))
        needle = q.strip().lower()
        out = []
        for row in rows:
            v = self.view(row)
            h = row.header
            wanted = ((kind, row.kind), (level, str(h.level)), (urgency, str(h.urgency)),
                      (tlp, v.tlp), (state, v.state))
            if any(want and want != have for want, have in wanted):
                continue
            # Search runs over decrypted rows in memory (the store's index holds no
            # content): ids, parties, and every text of the body.
            if needle and needle not in " ".join(
                    (row.id, row.kind, h.sender, v.counterpart,
                     msgspec.json.encode(row.body).decode())).lower():
                continue
            out.append(v)
        out.sort(key=lambda v: v.row.received_at, reverse=True)
        return out

    def message(self, message_id: str) -> tuple[MessageView, list[Row]]:
        row = self.holder.get(message_id)
        return self.view(row), sorted(self._related(message_id), key=lambda r: r.received_at)

    def consent_requests(self) -> tuple[list[tuple[Row, Row | None]], list[tuple[Row, Row | None]]]:
        """(received: to decide as originator, sent: ours), each with its decision."""
        rows = list(self.holder.store.query("kind IN ('consent_request', 'consent_decision')"))
        decisions = {str(getattr(r.body, "request", "")): r for r in rows
                     if r.kind == "consent_decision"}
        received = [(r, decisions.get(r.id)) for r in rows
                    if r.kind == "consent_request" and r.direction == "in"]
        sent = [(r, decisions.get(r.id)) for r in rows
                if r.kind == "consent_request" and r.direction == "out"]
        return received[::-1], sent[::-1]

    def alerts(self, limit: int = 50) -> list[MessageView]:
        rows = list(self.holder.store.query("kind = 'alert'"))[-limit:]
        return [self.view(r) for r in reversed(rows)]

    def parties(self) -> dict[str, list[str]]:
        """Who can be named: agencies (from the signed directory), groups and countries
        (from the federation registry)."""
        d = self.holder.client.directory
        # Auditors never receive content and the log key is no agency: not offered.
        agencies = [a for a in d.agencies() if a != self.agency and not a.startswith("ORCON-")
                    and "auditor" not in d.entry(a).roles]
        groups: list[str] = []
        countries: set[str] = set()
        if self.federation is not None:
            groups = sorted(g.id for g in self.federation.groups)
            countries = {a.country for a in self.federation.agencies}
        return {"agencies": agencies, "groups": groups, "countries": sorted(countries)}


class AuditDesk:
    """The auditor's desk: fetch the log into DIR/audit/<auditor>, verify, report."""

    def __init__(self, conn: Connection, auditor: str, bundle_dir: Path) -> None:
        self.conn = conn
        self.agency = auditor
        self.bundle_dir = bundle_dir
        self.lock = asyncio.Lock()
        self.last: VerifyReport | None = None
        self.fetched: tuple[int, int] | None = None

    async def fetch_and_verify(self) -> VerifyReport:
        async with self.lock:
            self.fetched = await fetch_bundle(self.conn, self.agency, self.bundle_dir)
            # Verification recomputes every hash: off the event loop.
            self.last = await asyncio.to_thread(verify_bundle, self.bundle_dir)
            return self.last

    async def report(self) -> str:
        async with self.lock:
            if self.last is None:
                raise LookupError("fetch and verify the log first")
            return await asyncio.to_thread(self._render, self.last)

    def _render(self, verification: VerifyReport) -> str:
        return render_report(read_bundle(self.bundle_dir), verification=verification)

    def summary(self) -> dict[str, Any]:
        return {"fetched": self.fetched, "verified": self.last}
