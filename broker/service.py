"""The routing service: verify, decide, deliver, audit. It never reads a body.

A submission is acknowledged to JetStream only after every delivery, the sender's
outcome report and every audit event are stored (publish acknowledgements), so a crash
at any point leads to redelivery, and redelivery is harmless: every publish carries a
`Nats-Msg-Id` derived from the message id, which JetStream de-duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

import schemas
from broker import lifecycle, resolve
from broker import subjects as s
from broker.audit.events import AuditEvent, EventType
from broker.audit.stream import encode_events, event_with_id
from broker.jspub import AckPublisher
from broker.metrics import Metrics
from keys.directory import Directory
from keys.envelope import for_recipient, header_hash, verify
from keys.errors import CryptoError, KeysError
from policies.engine import Decision, PolicyEngine
from schemas.acts import (
    FORWARD_TAG,
    ForwardSubmission,
    decode_forward,
    encode_forward,
    is_forward,
)

log = structlog.get_logger("orcon.broker")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class BrokerConfig:
    broker_id: str = "broker-1"
    max_message_bytes: int = 1024 * 1024
    fetch_batch: int = 128
    clock: Callable[[], datetime] = utcnow


class Rejected(Exception):
    """A submission refused as a whole; `rule` is machine-readable, str() one sentence."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule


@dataclass
class Routed:
    """What the broker decided for one submission; published by `Broker._publish`."""

    outcome: schemas.Outcome
    deliveries: dict[str, bytes] = field(default_factory=dict)  # recipient -> envelope
    events: list[tuple[str, AuditEvent]] = field(default_factory=list)  # (dedupe id, event)


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
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    # ---- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        await self._pub.start()
        sub = await self.js.pull_subscribe_bind(s.BROKER_CONSUMER, s.SUBMIT_STREAM)
        await self.nc.subscribe("orcon.resolve.*", s.BROKER_QUEUE, cb=self._on_resolve)
        await self.nc.subscribe("orcon.directory.*", s.BROKER_QUEUE, cb=self._on_directory)
        self._tasks.append(asyncio.create_task(self._consume(sub), name="broker-consume"))
        log.info("broker_started", broker=self.config.broker_id, policy=self.engine.version)

    async def stop(self) -> None:
        """Graceful: finish the batch in hand, then stop fetching."""
        self._stopping.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout=10)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        log.info("broker_stopped", broker=self.config.broker_id)

    async def _consume(self, sub: JetStreamContext.PullSubscription) -> None:
        while not self._stopping.is_set():
            try:
                msgs = await sub.fetch(self.config.fetch_batch, timeout=0.5)
            except (TimeoutError, NatsTimeoutError):
                continue
            except Exception as exc:  # connection trouble: back off, never die
                log.warning("fetch_failed", error=type(exc).__name__)
                await asyncio.sleep(0.2)
                continue
            # Messages of one batch are independent; handling them concurrently lets
            # their publish acknowledgements overlap instead of queueing one by one.
            await asyncio.gather(*(self._handle(m) for m in msgs))

    async def _handle(self, msg: Msg) -> None:
        started = time.perf_counter()
        try:
            routed = self.route(msg.subject, msg.data)
            await self._publish(routed)
            await msg.ack()
        except Exception as exc:
            # Not acknowledged: JetStream redelivers after ack_wait. Dedupe ids make the
            # retry idempotent. One bad message never stops the loop.
            log.error("route_failed", error=type(exc).__name__, detail=str(exc)[:200])
            self.metrics.errors.inc()
            with contextlib.suppress(Exception):
                await msg.nak(delay=1.0)
            return
        self.metrics.latency.observe(time.perf_counter() - started)

    # ---- routing (no I/O: easy to test and to reason about) ---------------------------

    def route(self, subject: str, data: bytes) -> Routed:
        submitter = s.agency_of(subject)
        try:
            return self._route(submitter, data)
        except Rejected as rej:
            self.metrics.rejected.labels(rule=rej.rule).inc()
            message_id = _peek_message_id(data)
            outcome = schemas.Outcome(
                message_id=message_id or "",
                sender=submitter,
                status="rejected",
                error=f"{rej.rule}: {rej}",
                policy_version=self.engine.version,
            )
            event = self._event(
                "rejected",
                actor=submitter,
                message_id=message_id,
                rule=rej.rule,
                reason=str(rej),
            )
            # A rejected submission may have no usable id; the payload hash stands in.
            key = message_id or hashlib.sha256(data).hexdigest()
            log.info("rejected", sender=submitter, rule=rej.rule, message_id=message_id)
            return Routed(outcome=outcome, events=[(f"{key}:rejected", event)])

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
        env, header = self._verified(submitter, data, now)
        act: lifecycle.Verdict | None = None
        if header.kind in lifecycle.ACT_KINDS:
            try:
                act = lifecycle.check_act(header, self.engine, self.directory, now)
            except lifecycle.ActError as exc:
                raise Rejected(exc.rule, str(exc)) from None
            if not act.allowed:
                return self._act_refused(submitter, header, act)
        routed = self._route_verified(submitter, env, header, now)
        if act is not None:
            routed.events.append(self._act_event(submitter, header.id, act))
        return routed

    def _verified(
        self, submitter: str, data: bytes, now: datetime
    ) -> tuple[schemas.Envelope, schemas.Header]:
        """Decode a submitted envelope and verify its sender and signature."""
        try:
            env = schemas.decode_envelope(data)
            header = schemas.decode_header(env.header)
        except schemas.SchemaError as exc:
            raise Rejected("schema", str(exc)) from None
        if header.sender != submitter:
            raise Rejected(
                "sender.subject",
                f"the header names sender {header.sender} but it was submitted by {submitter}",
            )
        try:
            signer = self.directory.signing_key(
                header.sender, header.sender_key, now, created_at=header.created_at
            )
        except KeysError as exc:
            raise Rejected("sender.key", f"sender key refused: {exc}") from None
        try:
            verify(env, signer)
        except CryptoError:
            raise Rejected("signature", "the signature does not verify") from None
        if (unresolved := resolve.unresolved(self.engine, header)) is not None:
            raise Rejected(*unresolved)  # fail closed: never route on a name nobody has
        return env, header

    def _route_verified(
        self, submitter: str, env: schemas.Envelope, header: schemas.Header, now: datetime
    ) -> Routed:
        listed = set(header.recipients)
        stray = sorted({st.recipient for st in env.stanzas} - listed)
        if stray:
            raise Rejected(
                "envelope.stanza",
                f"stanzas for {', '.join(stray)} who are not among the signed recipients",
            )
        hh = header_hash(env.header).hex()
        decisions = self.engine.decide_receive(header, header.recipients, now)
        with_stanza = {st.recipient for st in env.stanzas}

        routed = Routed(outcome=schemas.Outcome(message_id=header.id, sender=submitter,
                                                status="routed"))
        delivered: list[str] = []
        refused: list[schemas.Refusal] = []
        common = {
            "message_id": header.id,
            "header_hash": hh,
            "policy_version": self.engine.version,
        }
        details = _restriction_details(header, self._country)
        routed.events.append((f"{header.id}:submitted",
                              self._event("submitted", actor=submitter, details=details,
                                          **common)))
        for d in decisions:
            if d.allowed and d.recipient not in with_stanza:
                d = Decision(d.recipient, False, "envelope.no-stanza",
                             f"refused: the sender sealed no key for {d.recipient}",
                             d.policy_version)
            if d.allowed:
                routed.deliveries[d.recipient] = schemas.encode_envelope(
                    for_recipient(env, d.recipient)
                )
                delivered.append(d.recipient)
                kind = "delivered"
                self.metrics.routed.inc()
            else:
                refused.append(schemas.Refusal(d.recipient, d.rule, d.reason))
                kind = "refused"
                self.metrics.refused.labels(rule=d.rule).inc()
            per_recipient = {**details, "recipient_country": self._country(d.recipient)}
            event = self._event(
                kind, actor=submitter, counterpart=d.recipient, rule=d.rule, reason=d.reason,
                **{**common, "details": per_recipient},
            )
            routed.events.append((f"{header.id}:{kind}:{d.recipient}", event))
        routed.outcome = schemas.Outcome(
            message_id=header.id,
            sender=submitter,
            status="routed",
            delivered=delivered,
            refused=refused,
            policy_version=self.engine.version,
        )
        log.debug("routed", message_id=header.id, sender=submitter,
                 delivered=len(delivered), refused=len(refused))
        return routed

    # ---- life cycle (checks in broker/lifecycle.py) -------------------------------------

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
        return (f"{act_id}:{v.event.value}", event)

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
        env, notice = self._verified(submitter, sub.notice, now)
        try:
            v = lifecycle.check_forward(notice, original_env, self.engine, self.directory, now)
        except lifecycle.ActError as exc:
            raise Rejected(exc.rule, str(exc)) from None
        if not v.allowed:
            return self._act_refused(submitter, notice, v)
        assert v.counterpart is not None
        routed = self._route_verified(submitter, env, notice, now)
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

    async def _publish(self, routed: Routed) -> None:
        mid = routed.outcome.message_id
        pub = self._pub
        acks = [await pub.publish(s.deliver(rcpt), env, f"{mid}:{rcpt}")
                for rcpt, env in routed.deliveries.items()]
        if routed.events:
            batch = encode_events([event_with_id(ev, key) for key, ev in routed.events])
            acks.append(await pub.publish(s.AUDIT_IN_SUBJECT, batch,
                                          f"{routed.events[0][0]}:events"))
        # Deliveries and audit events first; the sender learns the outcome only once
        # they are durable, so an outcome never reports a delivery that could be lost.
        await pub.wait(acks)
        if routed.outcome.sender and s.AGENCY_ID_RE.match(routed.outcome.sender):
            # A submission with no readable id is keyed like its audit event (a hash of
            # its bytes): distinct rejections must never be de-duplicated away.
            key = f"{mid or routed.events[0][0]}:outcome"
            await pub.wait([await pub.publish(s.report(routed.outcome.sender),
                                              schemas.encode(routed.outcome), key)])

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


def _peek_message_id(data: bytes) -> str | None:
    """Best effort: the id of a submission that failed validation, for the report."""
    if is_forward(data):  # a forward is reported under its notice's id
        with contextlib.suppress(Exception):
            data = decode_forward(data).notice
    try:
        env = msgspec.msgpack.decode(data, type=schemas.Envelope)  # no checks: only the id
        raw = msgspec.msgpack.decode(env.header)
    except Exception:
        return None
    mid = raw.get("id") if isinstance(raw, dict) else None
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
