"""The life cycle after delivery, on the agency's side (Article 10(2)).

`Holder` composes an `AgencyClient` (sending, verifying, opening) with a local encrypted
`Store`. Every act is a signed orcon message through the broker, so it is checked and
audited there too; this side refuses early and explains, the broker decides for the
record:

    sync()             fetch deliveries (and forwards) into the store; reminders flagged
    state(row)         where a message stands (the one rule of `orcon list` and the console)
    open(id)           read a message; the first open signs an acknowledgment
    use(...)           declare a use; refused with the restriction's name if not allowed
    request_consent    ask the originator to lift a restriction for one action and party
    grant / refuse     the originator's signed decision (conditions, expiry)
    forward(...)       re-wrap the content key to a third party; the originator's signed
                       header travels unchanged, the forwarder may only tighten
    purge()            destroy expired messages, each with a signed purge receipt
    reply / requests   threaded replies; deadlines from each request's response term
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import structlog

import schemas
from clients.sdk.client import AgencyClient, Sent
from clients.sdk.opening import Delivery, Received, Rejection, parse_delivery
from clients.sdk.seen import StoredIds
from clients.sdk.store import Record, Row, Store, micros
from keys.envelope import add_stanzas, unwrap_content_key
from policies.acts import (
    ACT_KINDS,
    CHANGE_KINDS,
    EVIDENTIAL_USES,
    loosened_fields,
    needed_consent,
    proof_of,
    use_refusal,
)
from schemas.acts import Act, SignedHeader
from schemas.codes import ConsentScope, Decision, PurgeReason, ReplyStatus, ResponseTerm, UseKind
from transport.connection import Connection

log = structlog.get_logger("orcon.holder")

REQUEST_KINDS = schemas.bodies.REQUEST_KINDS
# The label the broker puts on each delivery for the AckWatcher (broker/routing/acks.py;
# the SDK may not import the service: tests/cli/test_urgent_reports.py compares them).
WATCH_HEADER = "Orcon-Watch"
MAX_REMINDERS = 1000  # far above any watcher's max_reminders: a label beyond it is garbage
# Where a message stands for this agency (`Holder.state`): the one vocabulary of the CLI's
# `orcon list --state` and the console's filter.
STATES = ("new", "read", "acknowledged", "used", "consent pending", "expired", "withdrawn",
          "sent", "delivered", "not delivered")


class LifecycleError(Exception):
    """A life-cycle act refused; `rule` names the restriction or check, str() says why."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason


class UseRefused(LifecycleError):
    pass


class ForwardRefused(LifecycleError):
    pass


@dataclass(frozen=True)
class DeadlinePolicy:
    """How long the treaty terms give, when the request states no date. A date the
    requester states (`respond_by`, e.g. for MLA) always wins. Defaults (documented in
    docs/lifecycle.md) are operational conventions, not treaty text."""

    expeditiously: timedelta = timedelta(hours=24)  # Protocol art. 8(4): vessels
    without_undue_delay: timedelta = timedelta(days=7)  # art. 18(3): nationality
    reasonable_time: timedelta = timedelta(days=30)  # art. 13: documents
    as_soon_as_possible: timedelta = timedelta(days=30)  # UNTOC art. 18(24): MLA

    def due(self, header: schemas.Header, body: schemas.Body) -> datetime | None:
        term = getattr(body, "response_term", None)
        if term is None:
            return None
        respond_by: datetime | None = getattr(body, "respond_by", None)
        if respond_by is not None:
            return respond_by
        spans = {
            ResponseTerm.EXPEDITIOUSLY: self.expeditiously,
            ResponseTerm.WITHOUT_UNDUE_DELAY: self.without_undue_delay,
            ResponseTerm.REASONABLE_TIME: self.reasonable_time,
            ResponseTerm.AS_SOON_AS_POSSIBLE: self.as_soon_as_possible,
        }
        span = spans.get(ResponseTerm(term))
        return header.created_at + span if span is not None else None


@dataclass(frozen=True)
class RequestStatus:
    id: str
    kind: str
    direction: str  # "out": we asked; "in": we were asked
    counterpart: str
    due_at: datetime | None
    answered_at: datetime | None
    overdue: bool


@dataclass
class SyncResult:
    new: list[Row] = field(default_factory=list)
    reminders: list[str] = field(default_factory=list)  # urgent ids re-notified
    rejected: list[Rejection] = field(default_factory=list)


def _reminder_number(watch: str | None, message_id: str) -> int | None:
    """n, when `watch` (a delivery's WATCH_HEADER) is the AckWatcher's n-th reminder of
    `message_id`; None for anything else (the first delivery, a plain redelivery). Only
    the broker and the watcher publish on delivery subjects, so the label is theirs."""
    kind, _, rest = (watch or "").partition(" ")
    mid, _, n = rest.partition(" ")
    if kind != "reminder" or mid != message_id or not (n.isascii() and n.isdigit()):
        return None
    return int(n) if 0 < int(n) <= MAX_REMINDERS else None


def _routed(row: Row) -> bool:
    o = row.record.outcome
    return o is not None and o.status == "routed"


def tightest(a: schemas.Restrictions, b: schemas.Restrictions) -> schemas.Restrictions:
    """Both sets of restrictions at once: each field at the tighter of the two. Lists
    that allow (purposes, release_to) intersect; when the intersection is empty, `b`'s
    list stands (an empty list would mean "no restriction")."""
    def narrower(x: list[str], y: list[str]) -> list[str]:
        if not x or not y:
            return sorted(set(x or y))
        both = set(x) & set(y)
        return sorted(both) if both else sorted(set(y))

    def earlier(x: datetime | None, y: datetime | None) -> datetime | None:
        return min((t for t in (x, y) if t is not None), default=None)

    tlps = [t for t in (a.tlp, b.tlp) if t is not None]
    return schemas.Restrictions(
        purposes=[schemas.Purpose(p) for p in narrower([str(p) for p in a.purposes],
                                                       [str(p) for p in b.purposes])],
        release_to=narrower(a.release_to, b.release_to),
        exclude=sorted(set(a.exclude) | set(b.exclude)),
        no_evidential_use=a.no_evidential_use or b.no_evidential_use,
        no_onward_dissemination=a.no_onward_dissemination or b.no_onward_dissemination,
        no_public_disclosure=a.no_public_disclosure or b.no_public_disclosure,
        not_to_suspects=a.not_to_suspects or b.not_to_suspects,
        consult_before_action=a.consult_before_action or b.consult_before_action,
        not_before=max((t for t in (a.not_before, b.not_before) if t is not None),
                       default=None),
        expires_at=earlier(a.expires_at, b.expires_at),
        destroy_after_days=min((d for d in (a.destroy_after_days, b.destroy_after_days)
                                if d is not None), default=None),
        conditions=[*a.conditions, *(c for c in b.conditions if c not in a.conditions)],
        tlp=max(tlps, key=lambda t: schemas.TLP(t).rank) if tlps else None,
    )


class Holder:
    def __init__(self, client: AgencyClient, store: Store,
                 deadlines: DeadlinePolicy | None = None) -> None:
        self.client = client
        self.store = store
        self.agency = client.agency
        self.deadlines = deadlines or DeadlinePolicy()
        # Everything sent through the client is kept here, with the broker's outcome,
        # and what is stored is what was handed over (the one record of it).
        client.on_sent = self._keep_sent
        client.on_outcome = self._keep_outcome
        client.seen = StoredIds(store)

    @property
    def reports(self) -> list[schemas.Outcome]:
        """Outcomes and reports fetched and not yet claimed by a caller."""
        return self.client.unclaimed

    @classmethod
    async def open_for(cls, conn: Connection, agency: str, store_path: Path, *,
                       passphrase: str | None = None, purge: bool = True) -> Holder:
        """Connect, open the local store, and (by default) purge what has expired."""
        client = await AgencyClient.connect(conn, agency, passphrase=passphrase)
        holder = cls(client, Store(store_path, client.identity))
        if purge:
            await holder.purge()
        return holder

    async def close(self) -> None:
        await self.client.close()
        self.store.close()

    @property
    def now(self) -> datetime:
        return self.client.clock()

    # ---- receiving ---------------------------------------------------------------------

    async def sync(self, timeout: float = 1.0, limit: int = 100) -> SyncResult:
        """Fetch deliveries into the store. A delivery already stored is a redelivery,
        flagged as a reminder only when the AckWatcher labelled it one (it re-publishes
        unacknowledged urgent messages)."""
        out = SyncResult()
        for m in await self.client.fetch_deliveries(limit, timeout):
            self._take(m.data, out, (m.headers or {}).get(WATCH_HEADER))
            await m.ack()  # handled (stored, flagged or refused): never redeliver forever
        # The originator's amendments and withdrawals apply on the sync that brings them.
        for row in list(out.new):
            if row.kind in CHANGE_KINDS:
                problem = await self._apply_change(row)
                if problem is not None:
                    out.rejected.append(problem)
        # The broker's reports too (outcomes, urgent messages not acknowledged): kept with
        # the sent copies, and unclaimed for `wait_outcome` and `reports`.
        await self.client.poll_outcomes(timeout=min(timeout, 0.1))
        return out

    def _take(self, data: bytes, out: SyncResult, watch: str | None = None) -> None:
        delivery = parse_delivery(data)
        if isinstance(delivery, Rejection):
            out.rejected.append(delivery)
            return
        if delivery.notice is None and self._reminded(delivery, out, watch):
            return
        got = self.client.open_delivery(delivery)  # None: stored before (client.seen)
        if isinstance(got, Rejection):
            out.rejected.append(got)
        elif isinstance(got, Received):
            out.new.append(self._keep_received(got))

    def _reminded(self, delivery: Delivery, out: SyncResult, watch: str | None) -> bool:
        """A message delivered again that we hold: the AckWatcher's n-th reminder of an
        urgent message not yet acknowledged (its `Orcon-Watch: reminder <id> <n>` label;
        flagged, counted once however often it is redelivered), or a plain redelivery
        (at least once: nothing to do, and no reminder)."""
        existing = self.store.get(delivery.id)
        if existing is None:
            return False
        n = _reminder_number(watch, delivery.id)
        if n is not None and not existing.acked and n > existing.reminders:
            self.store.mark(existing.id, reminders=n)
            out.reminders.append(existing.id)
        return True

    def _keep_received(self, got: Received) -> Row:
        m = got.message
        record = Record(header=m.header_bytes, body=got.plaintext, envelope=m.data,
                        via=got.notice.data if got.notice is not None else b"",
                        restrictions=got.forwarded_restrictions)
        row = self._keep(m.header, got.body, record, "in")
        return row.known(body=got.body, message=m, notice=got.notice)

    def _keep(self, header: schemas.Header, body: schemas.Body, record: Record,
              direction: str) -> Row:
        row = self.store.put(direction=direction, header=header, record=record,
                             received_at=self.now, due_at=self.deadlines.due(header, body))
        if header.kind == "reply" and header.in_reply_to and isinstance(body, schemas.Reply):
            req = self.store.get(header.in_reply_to)
            if (req is not None and req.answered_at is None
                    and body.status is not ReplyStatus.POSTPONED):
                self.store.mark(req.id, answered_at=micros(self.now))
        if row is None:  # stored before: what is stored stands
            stored = self.store.get(header.id)
            assert stored is not None
            return stored
        return row

    def _keep_sent(self, sent: Sent, body: schemas.Body) -> None:
        """The sender's own copy of everything it sends (`AgencyClient.on_sent`): header,
        body, the sealed envelope (proof for later amendments) and who the resolver
        refused; the broker's outcome is added when it arrives."""
        assert sent.message is not None
        m = sent.message
        self._keep(sent.header, body, Record(header=m.header_bytes, body=sent.plaintext,
                                             envelope=m.data, refused=list(sent.refused)),
                   "out")

    def _keep_outcome(self, outcome: schemas.Outcome) -> None:
        """Store the broker's outcome with the sent copy. An "unacknowledged" report (an
        urgent message its recipient has not acknowledged) makes the sent copy a notice
        again, so the next inbox tells the sender."""
        row = self.store.get(outcome.message_id)
        if row is None or row.direction != "out":
            return
        if outcome.status == "unacknowledged":
            late = self._overdue(row, outcome)
            if not late:
                return
            overdue = {r.recipient: r for r in row.record.overdue}
            overdue.update({r.recipient: r for r in late})
            self.store.replace_record(row, msgspec.structs.replace(
                row.record, overdue=sorted(overdue.values(), key=lambda r: r.recipient)))
            self.store.mark(row.id, opened=0)
            return
        self.store.replace_record(row, msgspec.structs.replace(row.record, outcome=outcome))

    def _overdue(self, row: Row, report: schemas.Outcome) -> list[schemas.Refusal]:
        """The entries of an "unacknowledged" report that can be true: `ack.overdue` for
        an urgent message this agency sent, naming a recipient it was delivered to (the
        broker's outcome; before it arrives, those it was sealed to). Any other entry is
        not recorded (logged by id, never shown as a fact): a report naming a party that
        never had the message would tell the sender it had."""
        o = row.record.outcome
        holders = set(o.delivered if o is not None else row.header.recipients)
        urgent = row.header.urgency == schemas.Urgency.URGENT and report.sender == self.agency
        late = [r for r in report.refused
                if urgent and r.rule == "ack.overdue" and r.recipient in holders]
        if len(late) != len(report.refused):
            log.warning("unacknowledged_report_refused", message_id=row.id,
                        recipients=sorted({r.recipient for r in report.refused} -
                                          {r.recipient for r in late}))
        return late

    def unread(self) -> list[Row]:
        """Stored but never shown: new deliveries, and notices about sent messages (an
        urgent one not acknowledged in time), oldest first."""
        return list(self.store.query("opened = 0"))

    def get(self, message_id: str) -> Row:
        row = self.store.get(message_id)
        if row is None:
            raise LifecycleError("store.unknown", f"no message {message_id} in the local store")
        return row

    async def open(self, message: str | Row) -> Row:
        """Read a message (by id, or a Row just read from the store). The first open
        acknowledges its restrictions (signed, audited), whichever command opens it:
        inbox, alerts watch, or an act on it (use, consent, forward)."""
        row = self.get(message) if isinstance(message, str) else message
        if row.direction == "in" and not row.acked and row.kind not in ACT_KINDS:
            await self.acknowledge(row)
            row = row.with_flags(acked=True)
        if not row.opened:
            self.store.mark(row.id, opened=1)
            row = row.with_flags(opened=True)
        return row

    def state(self, row: Row, related: Iterable[Row] | None = None) -> str:
        """Where a message stands for this agency, one of STATES, read from the acts
        about it (`related`: the rows about it, if the caller has them). The same rules
        for a message received and one sent: the holders' acts are the ones this agency
        sent about a message received, and the ones it received about a message sent."""
        rel = list(related) if related is not None else list(
            self.store.query("about = ?", (row.id,)))
        # Only the originator withdraws; a sent withdrawal counts once the broker routed it.
        if any(r.kind == "withdrawal" and r.sender == row.sender
               and (r.direction == "in" or _routed(r)) for r in rel):
            return "withdrawn"
        if row.expires_at is not None and row.expires_at <= self.now:
            return "expired"  # the end of retention: the next purge destroys it
        if row.direction == "in" and not row.opened:
            return "new"
        by_holder = "out" if row.direction == "in" else "in"
        # A consent request is answered by the decision naming it (its signed act).
        decided = {r.header.act.request for r in rel if r.kind == "consent_decision"
                   and r.direction != by_holder and r.header.act is not None}
        if any(r.kind == "consent_request" and r.direction == by_holder
               and r.id not in decided for r in rel):
            return "consent pending"
        if any(r.kind == "use_declaration" and r.direction == by_holder for r in rel):
            return "used"
        if row.direction == "in":
            return "acknowledged" if row.acked else "read"
        if any(r.kind == "acknowledgment" and r.direction == "in" for r in rel):
            return "acknowledged"
        outcome = row.record.outcome
        if outcome is None:
            return "sent"
        return "delivered" if outcome.delivered else "not delivered"

    # ---- acts ----------------------------------------------------------------------------

    def _original(self, row: Row) -> tuple[schemas.Header, SignedHeader, SignedHeader | None]:
        notice = row.notice
        return (row.header, proof_of(row.message.envelope),
                proof_of(notice.envelope) if notice is not None else None)

    async def _act(self, row: Row, body: schemas.Body, act: Act, *,
                   to: str | None = None, in_reply_to: str | None = None,
                   wait: bool = True) -> tuple[schemas.Header, schemas.Outcome | None]:
        """Send one act about `row` (to the originator unless `to`), and wait for the
        broker's outcome so a refusal surfaces as an error, not silence."""
        original = row.header
        target = to or original.sender
        sent = await self.client.send(
            body, category=original.category, level=original.level, to=[target],
            in_reply_to=in_reply_to or original.id, thread=original.thread or original.id,
            act=act)
        if not sent.submitted:
            reason = "; ".join(f"{r.recipient}: {r.reason}" for r in sent.refused)
            raise LifecycleError(sent.refused[0].rule if sent.refused else "resolve",
                                 f"the act could not be sent ({reason})")
        outcome = await self.wait_outcome(sent.header.id) if wait else None
        if outcome is not None and outcome.status == "rejected":
            # Rejected as a whole (e.g. sender.key after a revocation): the act did not
            # happen, and the holder must hear the broker's rule, not a success.
            rule, _, reason = (outcome.error or "rejected").partition(": ")
            raise LifecycleError(rule, reason or rule)
        return sent.header, outcome

    async def wait_outcome(self, message_id: str, timeout: float = 10.0) -> schemas.Outcome:
        """The broker's outcome for one submission (`AgencyClient.wait_outcome`); other
        outcomes stay in `self.reports` (e.g. "unacknowledged" reports)."""
        return await self.client.wait_outcome(message_id, timeout)

    async def acknowledge(self, row: Row) -> schemas.Header:
        header, original, via = self._original(row)
        body = schemas.Acknowledgment(message_id=header.id, received_at=row.received_at)
        act = Act(message_id=header.id, original=original, via=via)
        sent, _ = await self._act(row, body, act, wait=False)
        self.store.mark(row.id, acked=1)
        return sent

    def consents(self, message_id: str, action: ConsentScope,
                 party: str) -> list[SignedHeader]:
        """Granted, unexpired consents from the originator for exactly (action, party)."""
        row = self.get(message_id)
        out = []
        for r in self.store.query("kind = 'consent_decision' AND about = ? AND direction = 'in'",
                                  (message_id,)):
            h = r.header
            a = h.act
            if (a is None or not a.granted or a.action != action or a.party != party
                    or h.sender != row.header.sender
                    or (a.valid_until is not None and self.now >= a.valid_until)):
                continue
            out.append(proof_of(r.message.envelope))
        return out

    async def use(self, message_id: str, purpose: schemas.Purpose, evidential: bool = False,
                  note: str | None = None, *, use: UseKind | None = None,
                  lang: str = "en", check: bool = True) -> schemas.Header:
        """Declare a use. Raises UseRefused naming the restriction when the originator's
        restrictions forbid it (checked here, and by the broker for the record).
        `check=False` skips the local check (tests use it to prove the broker's own)."""
        row = await self.open(message_id)
        kind = use or (UseKind.EVIDENCE if evidential else UseKind.ANALYSIS)
        evidential = evidential or kind in EVIDENTIAL_USES
        header = row.header
        need = needed_consent(kind, evidential, row.restrictions)
        consent = None
        if need is not None:
            found = self.consents(message_id, need, self.agency)
            consent = found[0] if found else None
        if check:
            refusal = use_refusal(row.restrictions, header.sender, self.agency, str(purpose),
                                  kind, evidential, [need] if consent and need else [],
                                  self.now)
            if refusal is not None:
                raise UseRefused(*refusal)
        _, original, via = self._original(row)
        body = schemas.UseDeclaration(
            message_id=message_id, use=kind, purpose=purpose, declared_at=self.now,
            note=schemas.Narrative(text=note, lang=lang) if note else None,
            consent=(schemas.decode_header(consent.header).id if consent else None))
        act = Act(message_id=message_id, original=original, via=via, use=kind,
                  purpose=purpose, evidential=evidential, consent=consent)
        sent, outcome = await self._act(row, body, act)
        if outcome is not None and outcome.refused:
            r = outcome.refused[0]
            raise UseRefused(r.rule, r.reason)
        return sent

    async def request_consent(self, message_id: str, action: ConsentScope, *,
                              to: str | None = None, justification: str,
                              lang: str = "en",
                              needed_by: datetime | None = None) -> schemas.Header:
        """Ask the originator to lift a restriction for one action: forwarding to `to`,
        or this agency's own evidential use, public disclosure or executive action."""
        row = await self.open(message_id)
        if action is ConsentScope.ONWARD_DISSEMINATION and to is None:
            raise LifecycleError("consent.party", "forwarding consent names the third party")
        party = to if action is ConsentScope.ONWARD_DISSEMINATION else self.agency
        assert party is not None
        _, original, via = self._original(row)
        body = schemas.ConsentRequest(
            message_id=message_id, scopes=[action],
            recipients=[party] if action is ConsentScope.ONWARD_DISSEMINATION else [],
            justification=schemas.Narrative(text=justification, lang=lang),
            needed_by=needed_by)
        act = Act(message_id=message_id, original=original, via=via, action=action,
                  party=party)
        sent, outcome = await self._act(row, body, act)
        if outcome is not None and not outcome.delivered:
            r = outcome.refused[0] if outcome.refused else None
            raise LifecycleError(r.rule if r else "consent", r.reason if r else str(outcome))
        return sent

    async def decide(self, request_id: str, *, grant: bool,
                     conditions: Sequence[str] = (), valid_until: datetime | None = None,
                     reason: str | None = None, lang: str = "en") -> schemas.Header:
        """The originator's signed decision on a consent request it received."""
        req = await self.open(request_id)
        rh = req.header
        ract = rh.act
        if req.kind != "consent_request" or ract is None:
            raise LifecycleError("consent.request", f"{request_id} is not a consent request")
        info = self.store.get(ract.message_id)
        if info is None or info.direction != "out" or info.header.sender != self.agency:
            raise LifecycleError("consent.not-originator",
                                 f"{self.agency} did not originate {ract.message_id}")
        assert ract.action is not None and ract.party is not None
        conds = [schemas.Condition(text=c, lang=lang) for c in conditions]
        decision = (Decision.REFUSED if not grant else
                    Decision.GRANTED_WITH_CONDITIONS if conds else Decision.GRANTED)
        body = schemas.ConsentDecision(
            message_id=ract.message_id, request=request_id, decision=decision,
            scopes=[ract.action] if grant else [],
            recipients=[ract.party] if grant and ract.action is
            ConsentScope.ONWARD_DISSEMINATION else [],
            conditions=conds if grant else [],
            reason=schemas.Narrative(text=reason, lang=lang) if reason else None,
            valid_until=valid_until)
        act = Act(message_id=ract.message_id, original=ract.original, action=ract.action,
                  party=ract.party, granted=grant, valid_until=valid_until, request=request_id)
        # The decision is about our own message: act as its sender, to the requester.
        sent, outcome = await self._act(info, body, act, to=rh.sender, in_reply_to=request_id)
        if outcome is not None and not outcome.delivered:
            r = outcome.refused[0] if outcome.refused else None
            raise LifecycleError(r.rule if r else "consent", r.reason if r else str(outcome))
        return sent

    async def grant(self, request_id: str, **kw: object) -> schemas.Header:
        return await self.decide(request_id, grant=True, **kw)  # type: ignore[arg-type]

    async def refuse(self, request_id: str, reason: str, **kw: object) -> schemas.Header:
        return await self.decide(request_id, grant=False, reason=reason, **kw)  # type: ignore[arg-type]

    async def forward(self, message_id: str, to: str, *,
                      consent: SignedHeader | None = None,
                      restrictions: schemas.Restrictions | None = None,
                      check: bool = True) -> schemas.Outcome:
        """Pass the information to `to` through the broker. The original header,
        signature and ciphertext go unchanged with one new stanza for `to`; `restrictions`
        may only tighten the originator's. A consent for exactly (forward, `to`) in the
        store is used when none is given. Raises ForwardRefused with the broker's rule.
        `check=False` skips the local tightening check (tests prove the broker's own)."""
        row = await self.open(message_id)
        original = row.header
        if row.record.via:
            raise ForwardRefused("forward.not-holder",
                                 "a forwarded copy cannot be forwarded again")
        if restrictions is not None and check:
            loose = loosened_fields(original.restrictions, restrictions)
            if loose:
                raise ForwardRefused("forward.loosen", "a forwarder may tighten the "
                                     f"originator's restrictions, never loosen them "
                                     f"({', '.join(loose)})")
        if consent is None:
            found = self.consents(message_id, ConsentScope.ONWARD_DISSEMINATION, to)
            consent = found[0] if found else None
        now = self.now
        env = row.message.envelope
        c = self.client
        signer = c.directory.signing_key(original.sender, original.sender_key, now,
                                         created_at=original.created_at)
        content_key = unwrap_content_key(env, c.identity, signer, now=now,
                                         hh=row.message.header_hash)
        bare = msgspec.structs.replace(env, stanzas=[])
        forwarded = add_stanzas(bare, content_key, c.directory.recipients_for(to, now),
                                hh=row.message.header_hash)
        del content_key  # key material: never kept longer than the re-wrap
        notice_body = schemas.ForwardNotice(
            message_id=message_id, forwarded_to=[to], forwarded_at=now,
            consent=schemas.decode_header(consent.header).id if consent else None)
        act = Act(message_id=message_id, original=proof_of(env), party=to, consent=consent,
                  restrictions=restrictions)
        draft = c.checked_draft(notice_body, category=original.category, level=original.level,
                                to=[original.sender], in_reply_to=message_id,
                                thread=original.thread or original.id, act=act)
        sent = await c.submit_forward(draft, notice_body, forwarded)
        outcome = await self.wait_outcome(sent.header.id)
        if outcome.status == "rejected":
            raise ForwardRefused("rejected", outcome.error or "rejected by the broker")
        if to not in outcome.delivered:
            r = next((x for x in outcome.refused if x.recipient == to), None)
            raise ForwardRefused(r.rule if r else "forward", r.reason if r else "not delivered")
        self._keep_sent(sent, notice_body)
        return outcome

    # ---- amend and withdraw ---------------------------------------------------------------

    def _own(self, message_id: str) -> Row:
        row = self.get(message_id)
        if row.direction != "out" or row.sender != self.agency or row.kind in ACT_KINDS:
            raise LifecycleError("amend.not-originator",
                                 f"{self.agency} did not originate {message_id}: only the "
                                 "originator amends or withdraws it")
        return row

    def _amendment_in_force(self, message_id: str) -> Row | None:
        """This originator's latest amendment of `message_id` that the broker accepted."""
        accepted = [r for r in self.store.query(
            "kind = 'amendment' AND about = ? AND direction = 'out'", (message_id,))
            if r.record.outcome is not None and r.record.outcome.status == "routed"]
        return accepted[-1] if accepted else None

    def _holders(self, row: Row) -> list[str]:
        """Who holds a sent message: the recipients the broker delivered it to, and the
        third parties they forwarded it to (`_forwards`)."""
        o = row.record.outcome
        held = list(o.delivered) if o is not None and o.status == "routed" \
            else list(row.header.recipients)
        held += [party for party, _ in self._forwards(row.id)]
        return sorted(set(held) - {self.agency}) or sorted(set(held))

    def _forwards(self, message_id: str) -> list[tuple[str, SignedHeader]]:
        """Forwards of a message we originated, from the signed forward notices the
        broker delivered to us (only forwards it allowed): (third party, proof)."""
        out = []
        for r in self.store.query("kind = 'forward_notice' AND about = ? AND "
                                  "direction = 'in'", (message_id,)):
            a = r.header.act
            if a is not None and a.party is not None and r.record.envelope:
                out.append((a.party, proof_of(r.message.envelope)))
        return out

    async def amend(self, message_id: str, restrictions: schemas.Restrictions, *,
                    reason: str | None = None, lang: str = "en",
                    check: bool = True) -> schemas.Header:
        """Tighten the restrictions of a message this agency sent: every holder's store
        applies them on its next sync and answers with a signed receipt. A change that
        loosens any field, against the original or the amendment in force, is refused
        (`amend.loosen`) here and by the broker. `check=False` skips the local checks
        (tests use it to prove the broker's own)."""
        row = self._own(message_id) if check else self.get(message_id)
        prev = self._amendment_in_force(message_id)
        if check:
            loose = sorted(set(loosened_fields(row.header.restrictions, restrictions))
                           | set(loosened_fields(row.restrictions, restrictions)))
            if loose:
                raise LifecycleError("amend.loosen", "an amendment may only tighten the "
                                     f"restrictions of {message_id}, never loosen them "
                                     f"({', '.join(loose)})")
            if restrictions == row.restrictions:
                raise LifecycleError("amend.unchanged",
                                     f"these are already the restrictions of {message_id}")
        body = schemas.Amendment(
            message_id=message_id, amended_at=self.now,
            reason=schemas.Narrative(text=reason, lang=lang) if reason else None)
        act = Act(message_id=message_id, original=self._proof(row), restrictions=restrictions,
                  amends=self._proof(prev) if prev is not None else None,
                  forwards=[p for _, p in self._forwards(message_id)])
        sent = await self._change(row, body, act, check)
        if row.direction == "out":
            self.store.replace_record(row, msgspec.structs.replace(
                row.record, restrictions=restrictions))
        return sent

    async def withdraw(self, message_id: str, reason: str, *, lang: str = "en",
                       check: bool = True) -> schemas.Header:
        """Withdraw a message this agency sent: every holder's store destroys its copy on
        its next sync and answers with a signed purge receipt (`originator_request`)."""
        row = self._own(message_id) if check else self.get(message_id)
        body = schemas.Withdrawal(message_id=message_id, withdrawn_at=self.now,
                                  reason=schemas.Narrative(text=reason, lang=lang))
        act = Act(message_id=message_id, original=self._proof(row),
                  forwards=[p for _, p in self._forwards(message_id)])
        return await self._change(row, body, act, check)

    def _proof(self, row: Row) -> SignedHeader:
        return proof_of(row.message.envelope)

    async def _change(self, row: Row, body: schemas.Body, act: Act,
                      resolve: bool) -> schemas.Header:
        original = row.header
        sent = await self.client.send(
            body, category=original.category, level=original.level, to=self._holders(row),
            in_reply_to=original.id, thread=original.thread or original.id, act=act,
            resolve=resolve)
        if not sent.submitted:
            r = sent.refused[0] if sent.refused else None
            raise LifecycleError(r.rule if r else "amend.holders",
                                 r.reason if r else f"no holder of {original.id} to tell")
        outcome = await self.wait_outcome(sent.header.id)
        if outcome.status == "rejected":
            raise LifecycleError("rejected", outcome.error or "rejected by the broker")
        if outcome.status == "refused" and outcome.refused:
            raise LifecycleError(outcome.refused[0].rule, outcome.refused[0].reason)
        return sent.header

    async def _apply_change(self, change: Row) -> Rejection | None:
        """Apply the originator's amendment or withdrawal to our copy and answer with a
        signed receipt. The change must come from the originator of a message we hold as
        a signed recipient (its signature was verified when it was opened); an amendment
        that would loosen what binds us is not applied and not receipted."""
        h, act = change.header, change.header.act
        if act is None:
            return Rejection(h.id, f"a {h.kind} without its signed act")
        target = self.store.get(act.message_id)
        try:
            original = schemas.decode_header(act.original.header)
        except schemas.SchemaError:
            return Rejection(h.id, f"a {h.kind} with an unreadable original")
        if (original.sender != h.sender or original.id != act.message_id
                or (target is not None and (target.direction != "in"
                                            or target.record.header != act.original.header))):
            return Rejection(h.id, f"the {h.kind} of {act.message_id} does not come from "
                             "its originator")
        # A forwarded copy proves how we hold it with the forwarder's signed notice.
        notice = target.notice if target is not None else None
        via = proof_of(notice.envelope) if notice is not None else None
        receipt: schemas.Body
        if h.kind == "withdrawal":
            if target is not None:
                self.store.delete(target.id)
            receipt = schemas.PurgeReceipt(message_id=act.message_id, purged_at=self.now,
                                           reason=PurgeReason.ORIGINATOR_REQUEST,
                                           copies=1 if target is not None else 0)
            ract = Act(message_id=act.message_id, original=act.original, via=via,
                       purge_reason=PurgeReason.ORIGINATOR_REQUEST, request=h.id)
            reply_to = act.message_id
        else:
            new = act.restrictions
            if new is None:
                return Rejection(h.id, "an amendment without restrictions")
            if target is not None:
                if target.record.via:
                    # A forwarded copy: the originator's amendment and the forwarder's
                    # tightening both bind, so the tighter of each field.
                    new = tightest(target.restrictions, new)
                loose = loosened_fields(target.restrictions, new)
                if loose:
                    return Rejection(h.id, "the amendment would loosen the restrictions in "
                                     f"force ({', '.join(loose)}); not applied")
                self.store.replace_record(target, msgspec.structs.replace(
                    target.record, restrictions=new))
            receipt = schemas.AmendmentReceipt(message_id=act.message_id, amendment=h.id,
                                               applied_at=self.now)
            ract = Act(message_id=act.message_id, original=act.original, via=via,
                       request=h.id)
            reply_to = h.id
        await self.client.send(receipt, category=original.category, level=original.level,
                               to=[h.sender], in_reply_to=reply_to,
                               thread=original.thread or original.id, act=ract)
        return None

    def compliance(self, message_id: str) -> list[tuple[str, str, datetime | None]]:
        """For each amendment or withdrawal of a message this agency sent (accepted by
        the broker): (holder, change id, when its signed receipt arrived or None)."""
        receipts: dict[tuple[str, str], datetime] = {}
        for r in self.store.query("kind IN ('amendment_receipt', 'purge_receipt') AND "
                                  "about = ? AND direction = 'in'", (message_id,)):
            a = r.header.act
            if a is not None and a.request is not None:
                receipts.setdefault((a.request, r.sender), r.received_at)
        out: list[tuple[str, str, datetime | None]] = []
        for ch in self.store.query("kind IN ('amendment', 'withdrawal') AND about = ? AND "
                                   "direction = 'out'", (message_id,)):
            o = ch.record.outcome
            if o is None or o.status != "routed":
                continue
            out += [(holder, ch.id, receipts.get((ch.id, holder)))
                    for holder in sorted(o.delivered)]
        return out

    # ---- retention ----------------------------------------------------------------------

    async def purge(self, now: datetime | None = None) -> list[str]:
        """Destroy what has expired. For information received from another agency, a
        signed purge receipt goes to the originator (and the audit log) first; the row
        is deleted only once the receipt is submitted, so a failure leaves it for the
        next purge rather than destroying it unrecorded."""
        now = now or self.now
        purged: list[str] = []
        for row in list(self.store.query("expires_at IS NOT NULL AND expires_at <= ?",
                                         (micros(now),))):
            if row.direction == "in" and row.kind not in ACT_KINDS and row.record.envelope:
                _, original, via = self._original(row)
                r = row.restrictions
                reason = (PurgeReason.EXPIRED if r.expires_at is not None and now >= r.expires_at
                          else PurgeReason.RETENTION_ELAPSED)
                body = schemas.PurgeReceipt(message_id=row.id, purged_at=now, reason=reason)
                act = Act(message_id=row.id, original=original, via=via, purge_reason=reason)
                await self._act(row, body, act, wait=False)
            self.store.delete(row.id)
            purged.append(row.id)
        return purged

    # ---- requests and replies -------------------------------------------------------------

    async def send(self, body: schemas.Body, **kw: object) -> schemas.Header:
        """Send through the SDK; the copy is kept by `_keep_sent`."""
        sent = await self.client.send(body, **kw)  # type: ignore[arg-type]
        return sent.header

    async def reply(self, request_id: str, body: schemas.Reply,
                    **kw: object) -> schemas.Header:
        """A reply threaded to its request (in_reply_to, thread)."""
        req = (await self.open(request_id)).header
        sent = await self.client.send(
            body, category=req.category, level=req.level, to=[req.sender],
            in_reply_to=request_id, thread=req.thread or req.id, **kw)  # type: ignore[arg-type]
        if not sent.submitted:
            raise LifecycleError("reply", "; ".join(r.reason for r in sent.refused))
        return sent.header

    def requests(self, overdue_only: bool = False,
                 now: datetime | None = None) -> list[RequestStatus]:
        now = now or self.now
        kinds = ",".join(f"'{k}'" for k in sorted(REQUEST_KINDS))  # constants, not input
        out = []
        for r in self.store.query(f"kind IN ({kinds})"):
            overdue = r.answered_at is None and r.due_at is not None and now > r.due_at
            if overdue_only and not overdue:
                continue
            h = r.header
            counterpart = (", ".join(h.recipients) if r.direction == "out" else h.sender)
            out.append(RequestStatus(r.id, r.kind, r.direction, counterpart, r.due_at,
                                     r.answered_at, overdue))
        return out
