"""The agency SDK: draft, resolve, seal, sign and submit; receive, verify and open.

The flow of one message, from the sender's side:
    draft header  ->  broker resolves who may receive  ->  seal the body to exactly those
    recipients' directory keys  ->  sign the header bytes  ->  submit to JetStream.
From the recipient's side:
    fetch own deliveries  ->  verify the sender's signature against the signed directory
    ->  check the header names us  ->  open  ->  hand over with the restrictions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, MutableSet, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

import schemas
from clients.sdk.seen import SeenIds
from keys.directory import Directory
from keys.envelope import open_envelope, seal
from keys.errors import CryptoError, KeysError, ReplayError
from keys.identity import Identity, Recipient
from keys.keyfile import load_identity
from schemas.clock import utcnow
from schemas.validate import check_body
from transport import subjects as s
from transport.connection import Connection, connect_nats

log = structlog.get_logger("orcon.client")


REPLAY_WINDOW = timedelta(days=30)


class SendError(Exception):
    """The message could not be submitted (nothing was sent)."""


@dataclass(frozen=True)
class Sent:
    """What `send` did: the signed header, who it was sealed to, who was refused and why
    (at resolve time; the broker's own outcome arrives later through `outcomes`)."""

    header: schemas.Header
    sealed_to: list[str]
    refused: list[schemas.Refusal]
    submitted: bool


@dataclass(frozen=True)
class Received:
    header: schemas.Header
    body: schemas.Body
    received_at: datetime


@dataclass
class Rejection:
    """A delivery the SDK refused to hand over, and why (never the content)."""

    message_id: str | None
    reason: str


@dataclass
class InboxBatch:
    messages: list[Received] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


class AgencyClient:
    def __init__(
        self,
        nc: NATS,
        identity: Identity,
        directory: Directory,
        *,
        clock: Callable[[], datetime] = utcnow,
        replay_window: timedelta = REPLAY_WINDOW,
        directory_max_age: float = 5.0,
        seen: MutableSet[str] | None = None,
    ) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.identity = identity
        self.agency = identity.agency
        self.directory = directory
        self.clock = clock
        self._replay_window = replay_window
        # Ids handed over: in memory by default; `clients.sdk.seen.SeenIds` (a file) keeps
        # them across restarts, as `connect(seen_path=...)` does.
        self._seen: MutableSet[str] = seen if seen is not None else set()
        self._inbox: JetStreamContext.PullSubscription | None = None
        # Rotations and revocations reach clients by refetching the (root-signed)
        # directory at most this many seconds after the last fetch.
        self.directory_max_age = directory_max_age
        self._directory_at = time.monotonic()
        self._reports: JetStreamContext.PullSubscription | None = None
        # The sender's own copy: `clients.sdk.holder.Holder` sets these so everything sent
        # through this client (header, body, sealed envelope, refusals) and every outcome
        # the broker reports lands in the agency's encrypted store, whichever command sent.
        self.on_sent: Callable[[Sent, schemas.Body, bytes], None] | None = None
        self.on_outcome: Callable[[schemas.Outcome], None] | None = None

    @classmethod
    async def connect(
        cls,
        conn: Connection,
        agency: str,
        *,
        passphrase: str | None = None,
        identity: Identity | None = None,
        clock: Callable[[], datetime] = utcnow,
        seen_path: Path | None = None,
    ) -> AgencyClient:
        creds = conn.credentials(agency)
        if identity is None:
            if creds.key is None:
                raise LookupError(f"{agency} has no orcon identity (an auditor cannot receive)")
            if passphrase is None:
                passphrase = conn.passphrase()
            identity = load_identity(Path(creds.key), passphrase)
        nc = await connect_nats(conn, agency, creds.nkey)
        try:
            directory = await fetch_directory(nc, agency, bytes.fromhex(conn.root_public))
        except BaseException:
            await nc.close()
            raise
        seen = SeenIds(seen_path, REPLAY_WINDOW, clock()) if seen_path is not None else None
        return cls(nc, identity, directory, clock=clock, seen=seen)

    async def close(self) -> None:
        # flush + close rather than drain: drain waits out the pull subscriptions'
        # pending fetch requests (up to its 30 s timeout) for nothing, as every ack has
        # already been written by then.
        with contextlib.suppress(Exception):
            await self.nc.flush(timeout=2)
        with contextlib.suppress(Exception):
            await self.nc.close()
        if isinstance(self._seen, SeenIds):
            self._seen.close()

    async def refresh_directory(self) -> None:
        # Only forward (keys.directory.Directory.successor): a stale or replayed copy
        # served by a broker must not undo a revocation; RollbackError keeps ours.
        self.directory = self.directory.successor(
            await fetch_directory(self.nc, self.agency, self.directory.root_public))
        self._directory_at = time.monotonic()

    async def _fresh_directory(self) -> None:
        if time.monotonic() - self._directory_at >= self.directory_max_age:
            try:
                await self.refresh_directory()
            except Exception as exc:  # keep the verified copy we have; say so
                log.warning("directory_refresh_failed", error=type(exc).__name__)

    # ---- sending ------------------------------------------------------------------------

    def draft(
        self,
        body: schemas.Body,
        *,
        category: schemas.Category,
        level: schemas.Level,
        restrictions: schemas.Restrictions | None = None,
        to: Sequence[str] = (),
        audience: Sequence[str] = (),
        **extra: object,
    ) -> schemas.Header:
        now = self.clock()
        return schemas.Header(
            v=schemas.SCHEMA_VERSION,
            id=schemas.new_message_id(now),
            kind=type(body).__struct_config__.tag,  # type: ignore[arg-type]
            sender=self.agency,
            sender_key=self.identity.signing_key_id,
            created_at=now,
            category=category,
            level=level,
            restrictions=restrictions or schemas.Restrictions(),
            recipients=sorted(set(to)),
            audience=list(audience),
            **extra,  # type: ignore[arg-type]
        )

    async def resolve(self, draft: schemas.Header, timeout: float = 5.0) -> schemas.ResolveReply:
        req = schemas.ResolveRequest(header=schemas.encode(draft))
        msg = await self.nc.request(s.resolve(self.agency), schemas.encode(req), timeout=timeout)
        reply = msgspec.msgpack.decode(msg.data, type=schemas.ResolveReply)
        if reply.errors:  # the draft itself is refused, field by field: nothing is sealed
            raise schemas.SchemaError([schemas.FieldError(e.path, e.rule, e.message)
                                       for e in reply.errors])
        if reply.error:
            raise SendError(f"resolve refused the draft: {reply.error}")
        return reply

    async def send(
        self,
        body: schemas.Body,
        *,
        category: schemas.Category,
        level: schemas.Level,
        restrictions: schemas.Restrictions | None = None,
        to: Sequence[str] = (),
        audience: Sequence[str] = (),
        resolve: bool = True,
        **extra: object,
    ) -> Sent:
        """Resolve, seal to exactly the permitted recipients, sign and submit.

        `resolve=False` seals to `to` as given, leaving every decision to the broker
        (tests use it to prove the broker's own re-check).

        Raises `schemas.SchemaError` before anything is sealed when the body breaks a
        content rule (every error at once) or the broker refuses the draft: every error
        names the field, the rule and, for a restriction, audience or recipient the
        federation does not know, the nearest valid names."""
        draft = self.draft(body, category=category, level=level, restrictions=restrictions,
                           to=to, audience=audience, **extra)
        # The content rules too, all at once: a body the recipients would reject (an
        # unknown country code, a reply naming nothing) is never sealed, and the sender,
        # not the recipient, is told.
        errors = check_body(body, draft)
        if errors:
            raise schemas.SchemaError(errors)
        refused: list[schemas.Refusal] = []
        if resolve:
            reply = await self.resolve(draft)
            permitted, refused = list(reply.permitted), list(reply.refused)
        else:
            permitted = list(draft.recipients)
        header = msgspec.structs.replace(draft, recipients=sorted(set(permitted)))
        if not header.recipients:
            return Sent(header, [], refused, submitted=False)
        await self._fresh_directory()
        now = self.clock()
        recipients: list[Recipient] = []
        for agency in header.recipients:
            recipients.extend(self.directory.recipients_for(agency, now))
        header_bytes = schemas.encode(header)
        envelope = seal(header_bytes, schemas.encode(body), recipients, self.identity)
        header = msgspec.msgpack.decode(envelope.header, type=schemas.Header)  # as signed
        data = schemas.encode_envelope(envelope)
        await self.js.publish(s.submit(self.agency), data, headers={"Nats-Msg-Id": header.id})
        sent = Sent(header, list(header.recipients), refused, submitted=True)
        if self.on_sent is not None:
            self.on_sent(sent, body, data)
        return sent

    async def outcomes(self, limit: int = 100, timeout: float = 2.0) -> list[schemas.Outcome]:
        if self._reports is None:
            self._reports = await self.js.pull_subscribe_bind(
                s.report_consumer(self.agency), s.DELIVER_STREAM
            )
        try:
            msgs = await self._reports.fetch(limit, timeout=timeout)
        except (TimeoutError, NatsTimeoutError):
            return []
        out = []
        for m in msgs:
            outcome = msgspec.msgpack.decode(m.data, type=schemas.Outcome)
            if self.on_outcome is not None:
                self.on_outcome(outcome)  # kept before the ack: an outcome is never lost
            out.append(outcome)
            await m.ack()
        return out

    async def wait_outcome(self, message_id: str, timeout: float = 10.0) -> schemas.Outcome:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for outcome in await self.outcomes(timeout=0.5):
                if outcome.message_id == message_id:
                    return outcome
        raise TimeoutError(f"no outcome for {message_id} within {timeout} s")

    # ---- receiving ----------------------------------------------------------------------

    async def inbox(self, limit: int = 100, timeout: float = 2.0) -> InboxBatch:
        """Fetch, verify and open deliveries. A delivery is acknowledged once it has been
        handled, opened or refused, so a forged one cannot be redelivered forever. The
        acknowledgment precedes the caller's own storage: an application that must not
        lose a message to a crash in between uses `clients.sdk.holder.Holder` (what
        `orcon inbox` does), which stores each message before acknowledging it."""
        batch = InboxBatch()
        for m in await self.fetch_deliveries(limit, timeout):
            result = self.open_delivery(m.data)
            if isinstance(result, Received):
                batch.messages.append(result)
            elif result is not None:
                batch.rejected.append(result)
            await m.ack()
        return batch

    async def fetch_deliveries(self, limit: int, timeout: float) -> list[Msg]:
        """Raw deliveries from this agency's durable consumer (the caller acknowledges
        each once handled), with a fresh directory to verify them against."""
        await self._fresh_directory()
        if self._inbox is None:
            self._inbox = await self.js.pull_subscribe_bind(
                s.inbox_consumer(self.agency), s.DELIVER_STREAM
            )
        try:
            return await self._inbox.fetch(limit, timeout=timeout)
        except (TimeoutError, NatsTimeoutError):
            return []

    def open_delivery(self, data: bytes) -> Received | Rejection | None:
        """Verify and open one delivery; None for a duplicate already handed over."""
        now = self.clock()
        try:
            env = schemas.decode_envelope(data)
            header = schemas.decode_header(env.header)
        except schemas.SchemaError as exc:
            return Rejection(None, f"malformed delivery: {exc}")
        if header.id in self._seen:
            return None  # at-least-once delivery: handle each message once
        if self.agency not in header.recipients:
            return Rejection(header.id, "this agency is not among the signed recipients")
        if header.created_at < now - self._replay_window:
            return Rejection(header.id, "created outside the replay window")
        refusal = self._refuses_itself(header)
        if refusal is not None:
            return Rejection(header.id, refusal)
        try:
            signer = self.directory.signing_key(
                header.sender, header.sender_key, now, created_at=header.created_at
            )
            body_bytes = open_envelope(env, self.identity, signer, now=now)
            body = schemas.decode_body(body_bytes)
        except CryptoError:
            return Rejection(header.id, "cryptographic verification failed")
        except (KeysError, ReplayError) as exc:
            return Rejection(header.id, f"key refused: {exc}")
        except schemas.SchemaError as exc:
            return Rejection(header.id, f"malformed body: {exc}")
        if type(body).__struct_config__.tag != header.kind:
            return Rejection(header.id, "the body kind disagrees with the signed header")
        expires = header.restrictions.expires_at
        if expires is not None and now >= expires:
            return Rejection(header.id, "expired: the originator's use window has closed")
        self._seen.add(header.id)
        return Received(header=header, body=body, received_at=now)

    def _refuses_itself(self, header: schemas.Header) -> str | None:
        """Defense in depth against a broker that delivers what policy refused: the
        restrictions a recipient can check about itself from its own signed directory
        entry (its id, country, clearance and roles). Group membership is not in the
        directory, so `release_to` by group is left to the broker and the auditors."""
        try:
            me = self.directory.entry(self.agency)
        except KeysError:
            return None
        r = header.restrictions
        names = {self.agency, me.country}
        hit = sorted(names & set(r.exclude))
        if hit:
            return f"this agency is excluded by the sender (exclude = {', '.join(hit)})"
        if "auditor" in me.roles:
            return "an auditor never receives content"
        try:
            if schemas.Level(me.clearance).rank < schemas.Level(header.level).rank:
                return f"clearance {me.clearance} is below {header.level}"
        except ValueError:
            return f"unknown clearance {me.clearance!r}"
        return None


async def fetch_directory(nc: NATS, agency: str, root_public: bytes) -> Directory:
    """The broker serves the directory; the pinned root key decides what to believe."""
    msg = await nc.request(s.directory(agency), b"", timeout=5.0)
    return Directory.load(msg.data, root_public)
