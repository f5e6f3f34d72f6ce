"""The routing service: verify, decide, deliver, audit. It never reads a body.

A submission is acknowledged to JetStream only after every delivery, the sender's
outcome report and every audit event are stored (publish acknowledgements), so a crash
at any point leads to redelivery, and redelivery is harmless: every delivery and outcome
carries a `Nats-Msg-Id` derived from (sender, message id, header hash)
(broker/routing/dedupe.py), which JetStream de-duplicates, and every audit event an
event id from the same key, by which the sequencer drops an event it already appended
(the events of the submissions handled together share one AUDITIN message:
`AuditBatches`).

The broker is TOTAL: `route` never raises. Whatever a submission contains, its sender
gets a typed outcome, the log gets an event (bounded, see broker/routing/rejections.py) and the
submission is acknowledged; a defect in routing becomes rule `internal`. Only a store
refusing the result leaves a submission for redelivery, and after the consumer's
delivery limit it goes to the dead-letter stream (broker/routing/deadletter.py). Limits are
checked on the raw bytes before decoding (schemas/limits.py). Submissions are taken
round-robin per agency (broker/routing/fairness.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

import schemas
from broker.audit.events import AuditEvent
from broker.audit.sequencer import encode_events, event_with_id
from broker.metrics import Metrics
from broker.routing import deadletter, dedupe, resolve, streams
from broker.routing.acks import UNWATCHED, delivery_subject, watch_headers
from broker.routing.dedupe import Claim, MessageIds
from broker.routing.fairness import FairQueue, JunkBudget
from broker.routing.rejections import RejectionTally, Tally, bounded
from keys.directory import Directory
from keys.envelope import by_recipient, for_recipient, verify
from keys.errors import CryptoError, KeysError
from policies import acts as lifecycle
from policies.engine import Decision, PolicyEngine
from schemas import limits
from schemas.acts import (
    FORWARD_TAG,
    ForwardSubmission,
    decode_forward,
    encode_forward,
    is_forward,
)
from schemas.clock import utcnow
from schemas.events import EventType
from schemas.message import MAX_CLOCK_SKEW, Message, parse_message
from transport import subjects as s
from transport.jspub import AckPublisher, Outgoing, ack
from transport.pull import StandingPulls


class _Log:
    """The broker's log, which never raises: a broken log sink (a closed stream, a full
    disk) must not decide whether a submission is routed, or route() would not be
    total any more."""

    def __init__(self, name: str) -> None:
        self._log = structlog.get_logger(name)

    def _emit(self, level: str, event: str, **fields: object) -> None:
        with contextlib.suppress(Exception):
            getattr(self._log, level)(event, **fields)

    def debug(self, event: str, **fields: object) -> None:
        self._emit("debug", event, **fields)

    def info(self, event: str, **fields: object) -> None:
        self._emit("info", event, **fields)

    def warning(self, event: str, **fields: object) -> None:
        self._emit("warning", event, **fields)

    def error(self, event: str, **fields: object) -> None:
        self._emit("error", event, **fields)


log = _Log("orcon.broker")


@dataclass
class BrokerConfig:
    broker_id: str = "broker-1"
    max_message_bytes: int = 1024 * 1024
    fetch_batch: int = 128  # submissions handled at once, all agencies together
    pass_size: int = 32  # most submissions one worker routes and publishes together
    clock: Callable[[], datetime] = utcnow
    # `created_at` must lie in [now - max_age, now + max_skew] of the broker's clock: a
    # stolen key cannot date a message years ahead or just before its revocation.
    created_at_max_age: timedelta = timedelta(minutes=10)
    created_at_max_skew: timedelta = MAX_CLOCK_SKEW  # the recipients' allowance too
    per_agency: int = 64  # submissions of one agency in hand at once (fairness.py)
    # Back-off before a submission whose result could not be stored is tried again,
    # by attempt; after the consumer's max_deliver it is dead-lettered.
    retry_delays: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)
    tally_interval_s: float = 1.0  # how often aggregated rejections are audited
    # Junk (submissions that fail before or at verification) one agency may cost the
    # broker: this many at once, then this many per second (fairness.JunkBudget).
    junk_burst: int = 200
    junk_per_s: float = 1000.0


class Rejected(Exception):
    """A submission refused as a whole; `rule` is machine-readable, str() one sentence."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule


INTERNAL = ("the broker could not route this submission (an internal error, logged for "
            "its operators); it was not delivered to anyone")


@dataclass
class Routed:
    """What the broker decided for one submission; published by `Broker._publish`."""

    outcome: schemas.Outcome
    deliveries: dict[str, bytes] = field(default_factory=dict)  # recipient -> envelope
    events: list[tuple[str, AuditEvent]] = field(default_factory=list)  # (dedupe id, event)
    # (sender, message id, header hash) of a signed message that delivers or acts: it
    # is claimed in the message-id registry before anything is published.
    ident: tuple[str, str, str] | None = None
    outcome_key: str = ""
    junk: bool = False  # unauthenticated: counted against its agency's JunkBudget
    # NATS headers of each delivery: what the acknowledgment watcher needs (acks.py).
    watch: dict[str, str] = field(default_factory=lambda: UNWATCHED)


class Broker:
    def __init__(
        self,
        nc: NATS,
        engine: PolicyEngine,
        directory: Directory,
        config: BrokerConfig | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.engine = engine
        self.directory = directory
        self.config = config or BrokerConfig()
        self.metrics = metrics or Metrics()
        self._pub = AckPublisher(nc)
        self.ids = MessageIds(self.js, self._pub)
        self._audit = AuditBatches(self._pub)
        self._queue = FairQueue(self.config.per_agency, self.config.fetch_batch)
        self._budget = self._queue.budget = JunkBudget(self.config)
        self._pulls = StandingPulls(nc, s.SUBMIT_STREAM, self._queue.put_one, self._queue.room,
                                    lambda msg: s.agency_of(msg.subject))
        self._queue.on_done = self._pulls.top_up  # room again: ask for more at once
        self._tally = RejectionTally(self.config.clock)
        self._max_deliver: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()  # stop fetching
        self._drained = asyncio.Event()  # fetchers stopped: workers end when the queue is empty
        # Set while one submission is routed (route() is synchronous, so never shared):
        # the header hash once the signature verified, for rejections after that point.
        self._signed_hh: str | None = None

    # ---- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        await self._pub.start()
        await self.ids.start()
        await self._pulls.start()
        await self._follow_agencies()
        await self.nc.subscribe("orcon.resolve.*", s.BROKER_QUEUE, cb=self._on_resolve)
        await self.nc.subscribe("orcon.directory.*", s.BROKER_QUEUE, cb=self._on_directory)
        self._tasks += [
            *(asyncio.create_task(self._work(), name=f"broker-worker-{i}")
              for i in range(self.config.fetch_batch)),
            asyncio.create_task(self._watch_agencies(), name="broker-agencies"),
            asyncio.create_task(self._tick_pulls(), name="broker-pulls"),
            asyncio.create_task(self._flush_tally_periodically(), name="broker-tally"),
        ]
        # Started means answering: the server has every subscription above before anyone
        # is told (a directory request right after "broker_started" found no responder
        # when the process then paused, settling its heap, before the flush).
        await self.nc.flush()
        log.info("broker_started", broker=self.config.broker_id, policy=self.engine.version)

    async def stop(self) -> None:
        """Graceful: stop fetching, finish the submissions in hand, then stop."""
        self._stopping.set()
        self._queue.wake()
        with contextlib.suppress(Exception):
            # Asks for nothing more and queues what the open requests still bring, so
            # nothing the server counts as delivered to this broker is left behind.
            await self._pulls.stop()
        self._drained.set()
        self._queue.wake()
        await _finish(self._tasks)
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self._flush_tally()
        # The last pass's input acknowledgments are queued, not yet read by the server:
        # a round trip, so none is lost with the connection (each would be redelivered).
        with contextlib.suppress(Exception):
            await self.nc.flush(timeout=2)
        self._pub.close()
        log.info("broker_stopped", broker=self.config.broker_id)

    # ---- fetching: one consumer per agency, standing pull requests (pull.py), taken
    # round-robin (fairness.py) ---------------------------------------------------------

    async def _follow_agencies(self) -> None:
        """Fetch for every agency of the federation, including ones registered since."""
        for agency in sorted(a.id for a in self.engine.federation.agencies):
            if self._pulls.has(agency) or not s.AGENCY_ID_RE.match(agency):
                continue
            name = s.submit_consumer(agency)
            try:
                info = await self.js.consumer_info(s.SUBMIT_STREAM, name)
            except Exception:
                info = await self.js.add_consumer(s.SUBMIT_STREAM,
                                                  streams.submit_consumer_config(agency))
            self._max_deliver[agency] = info.config.max_deliver or streams.SUBMIT_MAX_DELIVER
            self._pulls.add(agency, name)
            self._pulls.top_up(agency)

    async def _watch_agencies(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=2.0)
            if self._stopping.is_set():
                return
            try:
                await self._follow_agencies()
            except Exception as exc:  # the next round tries again
                log.warning("follow_agencies_failed", error=type(exc).__name__)

    async def _tick_pulls(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=0.5)
            if not self._stopping.is_set():
                self._pulls.tick()

    async def _work(self) -> None:
        while (item := await self._queue.take(self._drained)) is not None:
            # One pass: this submission and every other one that may start now (the
            # fair queue's turns and limits decide which), handled together, so their
            # publishes are waited for once per pass instead of once per submission.
            items = [item]
            while (len(items) < self.config.pass_size
                   and (more := self._queue.take_more(self._drained)) is not None):
                items.append(more)
            try:
                await self._handle(items)
            except Exception as exc:
                # A defect outside routing (which never raises): the worker goes on, and
                # what was not acknowledged is redelivered after the consumer's ack_wait.
                log.error("pass_failed", error=type(exc).__name__,
                          detail=bounded(str(exc), 200))
                self.metrics.internal_errors.inc()
            finally:
                for agency, msg in items:
                    self._queue.done(agency, msg)

    async def _handle(self, items: list[tuple[str, Msg]]) -> None:
        """Route every submission of a pass, then claim their ids, then publish their
        deliveries and audit events (one AUDITIN message for all: `AuditBatches`), then,
        once those are stored, their outcomes, then acknowledge them. A store refusing
        one submission's results sends that submission alone to `_retry_or_dead_letter`."""
        started = time.perf_counter()
        work: list[tuple[Msg, Routed]] = []
        for agency, msg in items:
            routed = self.route(msg.subject, msg.data)
            if not routed.junk:
                self._budget.refund(agency)
            work.append((msg, routed))
        failed: list[tuple[Msg, Exception]] = []
        claimed = await self.ids.claim_all([r.ident for _, r in work])
        stage: list[tuple[Msg, Routed, list[asyncio.Future[None]]]] = []
        for (msg, routed), claim in zip(work, claimed, strict=True):
            if isinstance(claim, Exception):
                failed.append((msg, claim))
                continue
            if claim is Claim.CONFLICT:
                assert routed.ident is not None
                routed = self._reused_id(*routed.ident)
            try:
                stage.append((msg, routed, await self._send_results(routed)))
            except Exception as exc:
                failed.append((msg, exc))
        # Deliveries and audit events first; the sender learns the outcome only once
        # they are durable, so an outcome never reports a delivery that could be lost.
        durable: list[tuple[Msg, Routed]] = []
        for msg, routed, acks in stage:
            try:
                await self._pub.wait(acks)
                durable.append((msg, routed))
            except Exception as exc:
                failed.append((msg, exc))
        # Their outcomes, written together.
        told: list[tuple[Msg, list[asyncio.Future[None]]]] = []
        reports = [(msg, self._outcome(routed)) for msg, routed in durable]
        try:
            futures = iter(await self._pub.publish_many([r for _, r in reports if r]))
        except Exception as exc:
            failed.extend((msg, exc) for msg, _ in reports)
        else:
            told = [(msg, [next(futures)] if r else []) for msg, r in reports]
        done: list[Msg] = []
        for msg, acks in told:
            try:
                await self._pub.wait(acks)
                done.append(msg)
            except Exception as exc:
                failed.append((msg, exc))
        try:
            await ack(self.nc, done)
        except Exception as exc:  # not acknowledged: JetStream redelivers, ids dedupe
            log.error("ack_failed", error=type(exc).__name__)
        for msg, error in failed:
            # A store refused the result (routing itself never raises): try again later,
            # and after the delivery limit, hand it to the operators.
            await self._retry_or_dead_letter(msg, error)
        elapsed = time.perf_counter() - started
        for _ in done:
            self.metrics.latency.observe(elapsed)

    async def _retry_or_dead_letter(self, msg: Msg, exc: Exception) -> None:
        agency = s.agency_of(msg.subject)
        attempt = msg.metadata.num_delivered or 1
        error = f"{type(exc).__name__}: {bounded(str(exc), 200)}"
        if attempt < self._max_deliver.get(agency, streams.SUBMIT_MAX_DELIVER):
            log.error("route_failed", sender=agency, attempt=attempt, error=error)
            self.metrics.errors.inc()
            delays = self.config.retry_delays
            with contextlib.suppress(Exception):
                await msg.nak(delay=delays[min(attempt, len(delays)) - 1])
            return
        mid = _peek_message_id(msg.data) or ""
        seq = msg.metadata.sequence.stream
        log.error("dead_lettered", sender=agency, message_id=mid, attempts=attempt,
                  stream_seq=seq, error=error)
        self.metrics.dead_letters.inc()
        now = self.config.clock()
        pub = self._pub
        try:
            acks = [await pub.publish(
                s.DEADLETTER_SUBJECT, msg.data, f"dead:{seq}",
                headers=deadletter.headers(sender=agency, message_id=mid, attempts=attempt,
                                           error=error, broker=self.config.broker_id,
                                           stream_seq=seq, at=now))]
            event = self._event("dead_lettered", actor=agency, message_id=mid or None,
                                rule="dead-letter",
                                reason=f"not routed after {attempt} attempts "
                                       f"({type(exc).__name__}); kept for the operators")
            acks.append(await pub.publish(s.AUDIT_IN_SUBJECT,
                                          encode_events([event_with_id(event, f"dead:{seq}")]),
                                          f"dead:{seq}:events"))
            await pub.wait(acks)
            await msg.ack()
        except Exception as inner:  # JetStream stops redelivering; the log says why
            log.error("dead_letter_failed", sender=agency, stream_seq=seq,
                      error=type(inner).__name__)
            return
        outcome = schemas.Outcome(message_id=mid, sender=agency, status="rejected",
                                  error=f"internal: {INTERNAL}",
                                  policy_version=self.engine.version)
        with contextlib.suppress(Exception):  # best effort: the store may be what failed
            await pub.wait([await pub.publish(s.report(agency), schemas.encode(outcome),
                                              f"dead:{seq}:outcome")])

    # ---- rejections of unauthenticated submissions, aggregated (rejections.py) ---------

    async def _flush_tally_periodically(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(),
                                       timeout=self.config.tally_interval_s)
            try:
                await self._flush_tally()
            except Exception as exc:
                log.warning("rejection_tally_not_stored", error=type(exc).__name__)

    def rejection_tally(self) -> list[tuple[str, AuditEvent]]:
        """The aggregated `rejected` events of unauthenticated submissions since the last
        call, as (dedupe id, event); they are forgotten here (the caller stores them)."""
        return [(_tally_key(self.config.broker_id, t), self._tally_event(t))
                for t in self._tally.drain()]

    async def _flush_tally(self) -> None:
        tallies = self._tally.drain()
        if not tallies:
            return
        for t in tallies:
            if t.count > 1:
                log.info("rejected_aggregate", sender=t.sender, rule=t.rule, count=t.count)
        events = [event_with_id(self._tally_event(t), _tally_key(self.config.broker_id, t))
                  for t in tallies]
        try:
            await self._pub.wait([await self._pub.publish(
                s.AUDIT_IN_SUBJECT, encode_events(events), f"{events[0].details['event_id']}:b")])
        except Exception:
            self._tally.restore(tallies)
            raise

    def _tally_event(self, t: Tally) -> AuditEvent:
        details = {"count": str(t.count), "first_at": t.first_at.isoformat(),
                   "last_at": t.last_at.isoformat()}
        if t.message_ids:
            details["message_ids"] = ",".join(t.message_ids)
        return self._event("rejected", actor=t.sender, rule=t.rule, reason=t.reason,
                           policy_version=self.engine.version, details=details)

    # ---- routing (no I/O: easy to test and to reason about) ---------------------------

    def route(self, subject: str, data: bytes) -> Routed:
        """Total: every submission gets a Routed, whatever it contains."""
        submitter = s.agency_of(subject)
        self._signed_hh = None
        try:
            return self._route(submitter, data)
        except Rejected as rej:
            return self._rejected(submitter, data, rej)
        except Exception as exc:
            # A defect, not the sender's fault: no detail leaves the broker but the log.
            log.error("route_internal_error", sender=submitter, error=type(exc).__name__,
                      detail=bounded(str(exc), 200))
            self.metrics.internal_errors.inc()
            return self._rejected(submitter, data, Rejected("internal", INTERNAL))
        finally:
            self._signed_hh = None

    def _rejected(self, submitter: str, data: bytes, rej: Rejected) -> Routed:
        self.metrics.rejected.labels(rule=rej.rule).inc()
        message_id = _peek_message_id(data)
        reason = bounded(str(rej))
        outcome = schemas.Outcome(
            message_id=message_id or "",
            sender=submitter,
            status="rejected",
            error=f"{rej.rule}: {reason}",
            policy_version=self.engine.version,
        )
        hh = self._signed_hh
        if hh is not None and message_id:
            log.info("rejected", sender=submitter, rule=rej.rule, message_id=message_id)
            # Signed by its sender: accountable, audited one by one.
            event = self._event("rejected", actor=submitter, message_id=message_id,
                                rule=rej.rule, reason=reason, header_hash=hh,
                                policy_version=self.engine.version)
            return Routed(outcome=outcome,
                          events=[(dedupe.key(submitter, message_id, hh, "rejected"), event)],
                          outcome_key=dedupe.key(submitter, message_id, hh, "outcome"))
        if self._tally.add(submitter, rej.rule, message_id, reason):
            # Junk is logged like it is audited: the first of each (sender, rule) per
            # interval here, the count when the tally is flushed. One line per junk
            # submission was a quarter of the broker's CPU in a flood, and an attacker's
            # lever on the operators' log volume.
            log.info("rejected", sender=submitter, rule=rej.rule, message_id=message_id)
        digest = hashlib.sha256(data).hexdigest()
        return Routed(outcome=outcome, outcome_key=f"{submitter}:junk:{digest}:outcome",
                      junk=True)

    def _reused_id(self, sender: str, message_id: str, hh: str) -> Routed:
        rule = "dedupe.reused-id"
        reason = (f"message id {message_id} was already used by {sender} for another "
                  "message (another signed header); one id names one message")
        self.metrics.rejected.labels(rule=rule).inc()
        log.info("rejected", sender=sender, rule=rule, message_id=message_id)
        event = self._event("rejected", actor=sender, message_id=message_id, rule=rule,
                            reason=reason, header_hash=hh, policy_version=self.engine.version)
        return Routed(
            outcome=schemas.Outcome(message_id=message_id, sender=sender, status="rejected",
                                    error=f"{rule}: {reason}",
                                    policy_version=self.engine.version),
            events=[(dedupe.key(sender, message_id, hh, "rejected"), event)],
            outcome_key=dedupe.key(sender, message_id, hh, "outcome"))

    def _route(self, submitter: str, data: bytes) -> Routed:
        now = self.config.clock()
        if len(data) > self.config.max_message_bytes:
            raise Rejected(
                "envelope.size",
                f"the submission is {len(data)} bytes, above the limit of "
                f"{self.config.max_message_bytes}",
            )
        if is_forward(data):
            return self._route_forward(submitter, data, now)
        msg = self._verified(submitter, data, now)
        header = msg.header
        act: lifecycle.Verdict | None = None
        if header.kind in lifecycle.ACT_KINDS:
            try:
                act = lifecycle.check_act(header, self.engine, self.directory, now)
            except lifecycle.ActError as exc:
                raise Rejected(exc.rule, str(exc)) from None
            if not act.allowed:
                return self._act_refused(submitter, header, act)
        routed = self._route_verified(submitter, msg, now)
        if act is not None:
            routed.events.append(self._act_event(submitter, header.id, act))
        return routed

    def _verified(self, submitter: str, data: bytes, now: datetime) -> Message:
        """Parse a submitted envelope once (schemas.message) and verify its sender,
        signature and time."""
        try:
            # The header's depth, counts (recipients) and text lengths are checked on the
            # raw bytes before anything is decoded (schemas/limits.py).
            msg = parse_message(data)
            env, header = msg.envelope, msg.header
            if len(env.stanzas) > limits.MAX_STANZAS:
                raise Rejected("limits.items",
                               f"envelope.stanzas: {len(env.stanzas)} stanzas, above the "
                               f"limit of {limits.MAX_STANZAS}")
        except limits.LimitExceeded as exc:
            raise Rejected(exc.rule, str(exc)) from None
        except schemas.SchemaError as exc:
            raise Rejected("schema", str(exc)) from None
        if header.sender != submitter:
            raise Rejected(
                "sender.subject",
                f"the header names sender {header.sender} but it was submitted by {submitter}",
            )
        earliest = now - self.config.created_at_max_age
        latest = now + self.config.created_at_max_skew
        if not earliest <= header.created_at <= latest:
            raise Rejected("created_at.window",
                           f"created_at {header.created_at.isoformat()} is outside the "
                           f"broker's window: from {earliest.isoformat()} to "
                           f"{latest.isoformat()} (the broker's clock)")
        try:
            signer = self.directory.signing_key(
                header.sender, header.sender_key, now, created_at=header.created_at
            )
        except KeysError as exc:
            raise Rejected("sender.key", f"sender key refused: {exc}") from None
        # A revocation applies to everything received after it, whatever date the
        # message claims: a stolen key cannot sign "before" its revocation.
        revocation = self.directory.revocation(header.sender_key)
        if revocation is not None and now >= revocation.revoked_at:
            raise Rejected("sender.key",
                           f"sender key refused: {header.sender}: signing key "
                           f"{header.sender_key} was revoked at "
                           f"{revocation.revoked_at.isoformat()}")
        try:
            verify(env, signer, hh=msg.header_hash)
        except CryptoError:
            raise Rejected("signature", "the signature does not verify") from None
        self._signed_hh = msg.header_hash.hex()
        if (unresolved := resolve.unresolved(self.engine, header)) is not None:
            raise Rejected(*unresolved)  # fail closed: never route on a name nobody has
        return msg

    def _route_verified(self, submitter: str, msg: Message, now: datetime) -> Routed:
        env, header = msg.envelope, msg.header
        with_stanza = by_recipient(env)
        stray = sorted(with_stanza.keys() - set(header.recipients))
        if stray:
            raise Rejected(
                "envelope.stanza",
                f"stanzas for {', '.join(stray)} who are not among the signed recipients",
            )
        hh = msg.header_hash.hex()
        decisions = self.engine.decide_receive(header, header.recipients, now)

        routed = Routed(outcome=schemas.Outcome(message_id=header.id, sender=submitter,
                                                status="routed"),
                        ident=(submitter, header.id, hh), watch=watch_headers(header))
        delivered: list[str] = []
        refused: list[schemas.Refusal] = []
        common = {
            "message_id": header.id,
            "header_hash": hh,
            "policy_version": self.engine.version,
        }
        details = _restriction_details(header, self._country)
        routed.events.append((dedupe.key(submitter, header.id, hh, "submitted"),
                              self._event("submitted", actor=submitter, details=details,
                                          **common)))
        for d in decisions:
            if d.allowed and d.recipient not in with_stanza:
                d = Decision(d.recipient, False, "envelope.no-stanza",
                             f"refused: the sender sealed no key for {d.recipient}",
                             d.policy_version)
            if d.allowed:
                routed.deliveries[d.recipient] = schemas.encode_envelope(
                    with_stanza[d.recipient])
                delivered.append(d.recipient)
                kind = "delivered"
            else:
                refused.append(schemas.Refusal(d.recipient, d.rule, d.reason))
                kind = "refused"
                self.metrics.refused.labels(rule=d.rule).inc()
            per_recipient = {**details, "recipient_country": self._country(d.recipient)}
            event = self._event(
                kind, actor=submitter, counterpart=d.recipient, rule=d.rule, reason=d.reason,
                **{**common, "details": per_recipient},
            )
            routed.events.append((dedupe.key(submitter, header.id, hh, f"{kind}:{d.recipient}"),
                                  event))
        if delivered:
            self.metrics.routed.inc(len(delivered))  # once a message, not once a recipient
        routed.outcome = schemas.Outcome(
            message_id=header.id,
            sender=submitter,
            status="routed",
            delivered=delivered,
            refused=refused,
            policy_version=self.engine.version,
        )
        return routed

    # ---- life cycle (checks in policies/acts.py) -------------------------------------

    def _act_event(self, submitter: str, act_id: str,
                   v: lifecycle.Verdict) -> tuple[str, AuditEvent]:
        """The audit event of a checked act. It is about the original information (its
        id and header hash); `details.event_id`-style dedupe uses the act's own id."""
        details = {**_restriction_details(v.original, self._country), **v.details}
        if v.event in (EventType.FORWARDED, EventType.FORWARD_REFUSED):
            details["forward_to"] = v.counterpart or ""
        event = self._event(
            v.event.value, actor=submitter, message_id=v.original.id,
            counterpart=v.counterpart, rule=v.rule, reason=v.reason,
            header_hash=v.original_hash, policy_version=self.engine.version,
            details=details,
        )
        hh = self._signed_hh or v.original_hash
        return (dedupe.key(submitter, act_id, hh, v.event.value), event)

    def _act_refused(self, submitter: str, header: schemas.Header,
                     v: lifecycle.Verdict) -> Routed:
        """A use or forward the restrictions forbid: nothing is delivered; the holder is
        told the deciding rule and why, and the refusal is logged."""
        refusal = schemas.Refusal(v.counterpart or "", v.rule or "", v.reason or "")
        self.metrics.refused.labels(rule=refusal.rule).inc()
        log.info(v.event.value, message_id=v.original.id, actor=submitter, rule=v.rule)
        return Routed(
            outcome=schemas.Outcome(message_id=header.id, sender=submitter, status="refused",
                                    refused=[refusal], policy_version=self.engine.version),
            events=[self._act_event(submitter, header.id, v)],
            ident=(submitter, header.id, self._signed_hh) if self._signed_hh else None,
        )

    def _route_forward(self, submitter: str, data: bytes, now: datetime) -> Routed:
        """A holder passes information on: the notice (signed by the holder, sealed to the
        originator) is routed as usual; the original envelope, with one stanza for the
        third party, goes to the third party only if `lifecycle.check_forward` allows."""
        try:
            sub = decode_forward(data)
            original_env = schemas.decode_envelope(sub.original)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            raise Rejected("forward.schema", f"not a valid forward submission: {exc}") from None
        except schemas.SchemaError as exc:
            raise Rejected("forward.schema", str(exc)) from None
        msg = self._verified(submitter, sub.notice, now)
        env, notice = msg.envelope, msg.header
        try:
            v = lifecycle.check_forward(notice, original_env, self.engine, self.directory, now)
        except lifecycle.ActError as exc:
            raise Rejected(exc.rule, str(exc)) from None
        if not v.allowed:
            return self._act_refused(submitter, notice, v)
        assert v.counterpart is not None
        routed = self._route_verified(submitter, msg, now)
        third = v.counterpart
        # The third party gets the notice without stanzas (it verifies the holder's
        # signature, it cannot read the note to the originator) and the original.
        routed.deliveries[third] = encode_forward(ForwardSubmission(
            tag=FORWARD_TAG,
            notice=schemas.encode_envelope(for_recipient(env, third)),
            original=schemas.encode_envelope(original_env),
        ))
        routed.outcome = msgspec.structs.replace(
            routed.outcome, delivered=[*routed.outcome.delivered, third])
        routed.events.append(self._act_event(submitter, notice.id, v))
        return routed

    def _country(self, agency: str) -> str:
        try:
            return self.engine.federation.agency(agency).country
        except Exception:  # an unknown agency is refused elsewhere; here it has no country
            return "??"

    def _event(self, type_: str, *, actor: str, **fields: object) -> AuditEvent:
        return AuditEvent(
            type=EventType(type_), at=self.config.clock(), broker=self.config.broker_id,
            actor=actor, **fields,  # type: ignore[arg-type]
        )

    # ---- I/O ----------------------------------------------------------------------------

    async def _send_results(self, routed: Routed) -> list[asyncio.Future[None]]:
        pub = self._pub
        ident = routed.ident
        messages: list[Outgoing] = []
        for rcpt, env in routed.deliveries.items():
            watch = UNWATCHED if is_forward(env) else routed.watch
            key = dedupe.key(*ident, f"to:{rcpt}") if ident else f"{routed.outcome_key}:{rcpt}"
            messages.append((delivery_subject(rcpt, watch), env, key, watch))
        acks = await pub.publish_many(messages)
        if routed.events:
            acks.append(self._audit.add([event_with_id(ev, key) for key, ev in routed.events]))
        return acks

    @staticmethod
    def _outcome(routed: Routed) -> Outgoing | None:
        """The outcome report to publish (none to a sender that is not a valid id)."""
        if not (routed.outcome.sender and s.AGENCY_ID_RE.match(routed.outcome.sender)):
            return None
        ident = routed.ident
        key = routed.outcome_key or (dedupe.key(*ident, "outcome") if ident else "")
        return (s.report(routed.outcome.sender), schemas.encode(routed.outcome), key, None)

    async def _on_resolve(self, msg: Msg) -> None:
        res = resolve.resolve_draft(self.engine, s.agency_of(msg.subject), msg.data,
                                    self.config.clock(), self.config.broker_id)
        reply = res.reply
        if res.events:
            # Every refusal the sender is shown is logged before it is shown.
            try:
                batch = encode_events([event_with_id(ev, key) for key, ev in res.events])
                await self._pub.wait([await self._pub.publish(
                    s.AUDIT_IN_SUBJECT, batch, f"{res.events[0][0]}:events")])
            except Exception as exc:
                log.warning("resolve_audit_failed", error=type(exc).__name__)
                reply = schemas.ResolveReply(
                    error="audit.unavailable: the decision could not be logged; retry",
                    policy_version=self.engine.version)
        await msg.respond(schemas.encode(reply))

    async def _on_directory(self, msg: Msg) -> None:
        # The directory is signed by the federation root: serving it gives the broker no
        # power to forge an entry, and clients verify every entry they use.
        await msg.respond(self.directory.dump())


_event_encoder = msgspec.msgpack.Encoder()


class AuditBatches:
    """The audit events of every submission handled in one turn of the event loop, in
    one AUDITIN message (a group commit): one publish and one acknowledgment for the
    broker, one input for the sequencer, instead of one of each per submission (they
    were a third of the broker's publishes and most of the sequencer's inputs).

    Each caller gets a future of its own that resolves once JetStream stored the
    message holding its events (or fails with it), so a submission's outcome still
    waits for its events to be durable. The message carries no `Nats-Msg-Id`: which
    submissions share it is chance, so a redelivered submission's events come in
    another message, and the sequencer drops events it already appended by their
    event id (broker/audit/sequencer.py). A message holds at most `max_bytes` of
    events (the events of one submission are never split)."""

    def __init__(self, pub: AckPublisher, max_bytes: int = 256 * 1024) -> None:
        self._pub = pub
        self.max_bytes = max_bytes
        # Each submission's events, each encoded once; a message is their list, framed by
        # msgspec (`Raw` keeps an encoding as it is).
        self._parts: list[list[msgspec.Raw]] = []
        self._waiting: list[asyncio.Future[None]] = []
        self._sending: set[asyncio.Task[None]] = set()

    def add(self, events: list[AuditEvent]) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        if not self._parts:
            loop.call_soon(self._flush)
        self._parts.append([msgspec.Raw(_event_encoder.encode(ev)) for ev in events])
        fut: asyncio.Future[None] = loop.create_future()
        self._waiting.append(fut)
        return fut

    def _flush(self) -> None:
        parts, waiting = self._parts, self._waiting
        self._parts, self._waiting = [], []
        start = size = 0
        for i, part in enumerate(parts):
            part_size = sum(len(raw) for raw in part)
            if size and size + part_size > self.max_bytes:
                self._send(parts[start:i], waiting[start:i])
                start, size = i, 0
            size += part_size
        self._send(parts[start:], waiting[start:])

    def _send(self, parts: list[list[msgspec.Raw]],
              waiting: list[asyncio.Future[None]]) -> None:
        data = _event_encoder.encode([raw for part in parts for raw in part])
        task = asyncio.get_running_loop().create_task(self._publish(data, waiting))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, data: bytes, waiting: list[asyncio.Future[None]]) -> None:
        try:
            stored = await self._pub.publish(s.AUDIT_IN_SUBJECT, data, None)
        except Exception as exc:
            _settle(waiting, exc)
            return

        def done(f: asyncio.Future[None]) -> None:
            _settle(waiting, RuntimeError("the audit publish was cancelled")
                    if f.cancelled() else f.exception())

        stored.add_done_callback(done)


def _settle(waiting: list[asyncio.Future[None]], exc: BaseException | None) -> None:
    for fut in waiting:
        if fut.done():
            continue  # its submission gave up already (another publish failed)
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(None)


async def _finish(tasks: list[asyncio.Task[None]], timeout: float = 10.0) -> None:
    for task in tasks:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout=timeout)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _tally_key(broker_id: str, t: Tally) -> str:
    return (f"{t.sender}:{t.rule}:{t.first_at.isoformat()}:{t.count}:{broker_id}"
            ":rejected")


class _IdOnly(msgspec.Struct):
    id: str | None = None


_id_only = msgspec.msgpack.Decoder(_IdOnly)


def _peek_message_id(data: bytes) -> str | None:
    """Best effort: the id of a submission that failed validation, for the report."""
    if not data:
        return None
    try:
        if is_forward(data):  # a forward is reported under its notice's id
            data = decode_forward(data).notice
        # No validation (a header refused for a missing key commitment still has an
        # id the sender must see); typed: msgspec skips every other field.
        env = msgspec.msgpack.decode(data, type=schemas.Envelope)
        mid = _id_only.decode(env.header).id
    except Exception:
        return None
    if isinstance(mid, str) and len(mid) == 26 and mid.isalnum():
        return mid
    return None


def _restriction_details(
    header: schemas.Header, country: Callable[[str], str]
) -> dict[str, str]:
    """Metadata an auditor needs to judge later use against the restrictions."""
    r = header.restrictions
    details = {
        "kind": str(header.kind),
        "category": str(header.category),
        "level": str(header.level),
        "origin_country": country(header.sender),
        "no_evidential_use": str(r.no_evidential_use).lower(),
        "no_onward_dissemination": str(r.no_onward_dissemination).lower(),
    }
    if r.purposes:
        details["purposes"] = ",".join(sorted(str(p) for p in r.purposes))
    if r.expires_at is not None:
        details["expires_at"] = r.expires_at.isoformat()
    return details
