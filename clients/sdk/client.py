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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

import schemas
from clients.sdk.opening import Delivery, Received, Rejection, open_delivery, parse_delivery
from clients.sdk.seen import SeenIds, SeenRecord
from keys.directory import Directory
from keys.envelope import seal
from keys.identity import Identity, Recipient
from keys.keyfile import load_identity
from schemas.acts import FORWARD_TAG, ForwardSubmission, encode_forward
from schemas.clock import utcnow
from schemas.envelope import read_key_commitment
from schemas.message import Message, header_hash
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
    (at resolve time; the broker's own outcome arrives later through `outcomes`). A
    submitted message also carries the sealed message and the body's bytes as sealed
    (the sender's own copy keeps both as they are)."""

    header: schemas.Header
    sealed_to: list[str]
    refused: list[schemas.Refusal]
    submitted: bool
    message: Message | None = None
    plaintext: bytes = b""


__all__ = ["AgencyClient", "Delivery", "InboxBatch", "Received", "Rejection", "SendError",
           "Sent", "fetch_directory", "utcnow"]


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
        seen: SeenRecord | None = None,
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
        self._seen: SeenRecord = seen if seen is not None else set()
        self._inbox: JetStreamContext.PullSubscription | None = None
        # Rotations and revocations reach clients by refetching the (root-signed)
        # directory at most this many seconds after the last fetch.
        self.directory_max_age = directory_max_age
        self._directory_at = time.monotonic()
        self._reports: JetStreamContext.PullSubscription | None = None
        # Outcomes fetched and not yet claimed (`outcomes`, `wait_outcome`): whoever
        # fetches them, none is dropped.
        self._unclaimed: list[schemas.Outcome] = []
        # The sender's own copy: `clients.sdk.holder.Holder` sets these so everything sent
        # through this client (header, body, sealed envelope, refusals) and every outcome
        # the broker reports lands in the agency's encrypted store, whichever command sent.
        self.on_sent: Callable[[Sent, schemas.Body], None] | None = None
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

    def checked_draft(self, body: schemas.Body, **fields: Any) -> schemas.Header:
        """`draft(body, **fields)` whose body keeps the content rules. Raises
        `schemas.SchemaError` (every error at once) otherwise: a body the recipients would
        reject (an unknown country code, a reply naming nothing) is never sealed, and the
        sender, not the recipient, is told."""
        draft = self.draft(body, **fields)
        errors = check_body(body, draft)
        if errors:
            raise schemas.SchemaError(errors)
        return draft

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
        draft = self.checked_draft(body, category=category, level=level,
                                   restrictions=restrictions, to=to, audience=audience,
                                   **extra)
        refused: list[schemas.Refusal] = []
        if resolve:
            reply = await self.resolve(draft)
            permitted, refused = list(reply.permitted), list(reply.refused)
        else:
            permitted = list(draft.recipients)
        header = msgspec.structs.replace(draft, recipients=sorted(set(permitted)))
        if not header.recipients:
            return Sent(header, [], refused, submitted=False)
        return await self._seal_and_submit(header, body, refused)

    async def submit_forward(self, notice: schemas.Header, body: schemas.ForwardNotice,
                             original: schemas.Envelope) -> Sent:
        """Submit a forward: `notice` (a `checked_draft` of a forward_notice to the
        originator, its act naming the third party) sealed and signed as any message,
        with the ORIGINAL envelope (header, signature and ciphertext unchanged, a stanza
        added for the third party). The broker decides; the outcome says. The notice is
        not kept as a sent copy here: the caller keeps it once the forward is delivered."""
        data = schemas.encode_envelope(original)
        return await self._seal_and_submit(
            notice, body, [], own_copy=False,
            wrap=lambda sealed: encode_forward(ForwardSubmission(
                tag=FORWARD_TAG, notice=sealed, original=data)))

    async def _seal_and_submit(self, header: schemas.Header, body: schemas.Body,
                               refused: list[schemas.Refusal], *, own_copy: bool = True,
                               wrap: Callable[[bytes], bytes] | None = None) -> Sent:
        """The one place a message is sealed to its recipients' current directory keys,
        signed and submitted (`wrap` puts the sealed envelope in a forward)."""
        await self._fresh_directory()
        now = self.clock()
        recipients: list[Recipient] = []
        for agency in header.recipients:
            recipients.extend(self.directory.recipients_for(agency, now))
        plaintext = schemas.encode(body)
        envelope = seal(schemas.encode(header), plaintext, recipients, self.identity)
        data = schemas.encode_envelope(envelope)
        # As signed: sealing appends the key commitment (`keys.envelope.commit_header`),
        # the draft's last field, and nothing else; no need to decode what we encoded.
        signed = msgspec.structs.replace(
            header, key_commitment=read_key_commitment(envelope.header))
        message = Message(data=data, envelope=envelope, header=signed,
                          header_hash=header_hash(envelope.header))
        await self.js.publish(s.submit(self.agency), wrap(data) if wrap else data,
                              headers={"Nats-Msg-Id": signed.id})
        sent = Sent(signed, list(signed.recipients), refused, submitted=True,
                    message=message, plaintext=plaintext)
        if own_copy and self.on_sent is not None:
            self.on_sent(sent, body)
        return sent

    # ---- outcomes -------------------------------------------------------------------------

    @property
    def unclaimed(self) -> list[schemas.Outcome]:
        """Outcomes fetched and not yet claimed by `outcomes` or `wait_outcome`."""
        return self._unclaimed

    async def poll_outcomes(self, limit: int = 100, timeout: float = 2.0) -> int:
        """Fetch what the broker reported into `unclaimed` (each one handed to
        `on_outcome` before it is acknowledged: an outcome is never lost); how many."""
        if self._reports is None:
            self._reports = await self.js.pull_subscribe_bind(
                s.report_consumer(self.agency), s.DELIVER_STREAM
            )
        try:
            msgs = await self._reports.fetch(limit, timeout=timeout)
        except (TimeoutError, NatsTimeoutError):
            return 0
        for m in msgs:
            try:
                outcome = msgspec.msgpack.decode(m.data, type=schemas.Outcome)
            except (msgspec.DecodeError, msgspec.ValidationError):
                # Redelivered for ever it would stop every command of this agency.
                log.warning("malformed_report_dropped", size=len(m.data))
                await m.term()
                continue
            if self.on_outcome is not None:
                self.on_outcome(outcome)
            self._unclaimed.append(outcome)
            await m.ack()
        return len(msgs)

    async def outcomes(self, limit: int = 100, timeout: float = 2.0) -> list[schemas.Outcome]:
        """The broker's outcomes and reports not yet claimed, oldest first: those
        fetched earlier (while waiting for another) at once, else new ones, waiting up to
        `timeout` for the first."""
        if not self._unclaimed:
            await self.poll_outcomes(limit, timeout)
        out, self._unclaimed[:] = self._unclaimed[:limit], self._unclaimed[limit:]
        return out

    async def wait_outcome(self, message_id: str, timeout: float = 10.0) -> schemas.Outcome:
        """The broker's outcome for one submission. Every other outcome fetched while
        waiting stays unclaimed for `outcomes` (as do "unacknowledged" reports about this
        message, from the AckWatcher: they are not its outcome)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, o in enumerate(self._unclaimed):
                if o.message_id == message_id and o.status != "unacknowledged":
                    return self._unclaimed.pop(i)
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"no outcome for {message_id} within {timeout} s")
            await self.poll_outcomes(timeout=max(0.05, min(0.3, left)))

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

    @property
    def seen(self) -> SeenRecord:
        """The ids already handed over: the one record of what was delivered before."""
        return self._seen

    @seen.setter
    def seen(self, ids: SeenRecord) -> None:
        if isinstance(self._seen, SeenIds) and self._seen is not ids:
            self._seen.close()  # replaced (a Holder's store records instead): its file too
        self._seen = ids

    def open_delivery(self, data: bytes | Delivery) -> Received | Rejection | None:
        """Verify and open one delivery (a message, or a forwarded copy: the same
        checks, `clients.sdk.opening`), given as bytes or already parsed; None for a
        duplicate already handed over (at-least-once delivery: each message once)."""
        delivery = data if isinstance(data, Delivery) else parse_delivery(data)
        if isinstance(delivery, Rejection):
            return delivery
        if delivery.id in self._seen:
            return None
        got = open_delivery(delivery, identity=self.identity, directory=self.directory,
                            now=self.clock(), replay_window=self._replay_window)
        if isinstance(got, Received):
            self._seen.add(got.header.id)
        return got


async def fetch_directory(nc: NATS, agency: str, root_public: bytes) -> Directory:
    """The broker serves the directory; the pinned root key decides what to believe."""
    msg = await nc.request(s.directory(agency), b"", timeout=5.0)
    return Directory.load(msg.data, root_public)
