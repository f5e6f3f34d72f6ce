"""Acknowledged JetStream publishing without per-message overhead.

nats-py's `js.publish` pays, for every message, a request-inbox token, an
`asyncio.wait_for` timer task, a JSON parse into a PubAck, and (under `gather`) a task
of its own. Profiling put that at more than half of the broker's time (docs/bench.md,
"Profile"). This publisher does what Go's PublishAsync does: one wildcard reply
subscription, one future per message, and one timer for all of them (publishes expire
in the order they were sent, so the timer only ever looks at the oldest). The semantics
are the same: a publish counts only once JetStream has stored it (or recognised it as
a duplicate of its `Nats-Msg-Id`); anything else, including no answer within
`timeout`, raises, leaving the submission unacknowledged for JetStream to redeliver.

Lean on both sides (profile: nats-py's per-publish Python was ~27 % of the broker):
the protocol lines are written directly (what `Client.publish` would write, less its
per-call subject validation, which subjects built by transport/subjects.py do not
need), and the answers are handled inline in nats-py's reading loop (`Inline`: no
queue and task switch per answer). `ack` acknowledges pulled messages the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import deque
from collections.abc import Callable, Iterable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

# What nats-py does to a header value: a line break would end the header early.
_NO_NEWLINES = str.maketrans({"\r": " ", "\n": " "})
# A subject with white space would break the protocol line (nats-py validates it too).
_UNSAFE = re.compile(r"\s")


# What `AckPublisher.publish_many` sends: subject, payload, `Nats-Msg-Id` (or None) and
# headers (or None).
Outgoing = tuple[str, bytes, str | None, dict[str, str] | None]


class PublishNotAcknowledged(RuntimeError):
    """JetStream refused or did not answer; `err_code` is JetStream's error code when it
    gave one (10071: wrong last sequence), else 0."""

    def __init__(self, text: str, err_code: int = 0) -> None:
        super().__init__(text)
        self.err_code = err_code


def is_refusal(answer: Msg) -> bool:
    """Whether JetStream's answer to a publish refuses it. Stored (or a duplicate of its
    `Nats-Msg-Id`): {"stream":..,"seq":..}. Refused: {"error":..}, an empty answer, or a
    status header (503: no stream listens on the subject)."""
    return (b'"error"' in answer.data or not answer.data
            or bool(answer.headers and answer.headers.get("Status")))


def refusal(data: bytes) -> PublishNotAcknowledged:
    """The error for a refusing answer, with JetStream's error code when it gave one."""
    text = data[:200].decode(errors="replace") or "no stream answered"
    code = 0
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        code = int(json.loads(data)["error"].get("err_code", 0))
    return PublishNotAcknowledged(text, code)


class AckPublisher:
    def __init__(self, nc: NATS, timeout: float = 5.0) -> None:
        self.nc = nc
        self.timeout = timeout
        self.prefix = nc.new_inbox()
        self._futures: dict[str, asyncio.Future[None]] = {}
        self._deadlines: deque[tuple[float, str]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._n = 0

    async def start(self) -> None:
        await self.nc.subscribe(self.prefix + ".*", future=Inline(self._on_ack))

    def _on_ack(self, msg: Msg) -> None:
        fut = self._futures.pop(msg.subject.rsplit(".", 1)[1], None)
        if fut is None or fut.done():
            return
        if is_refusal(msg):
            fut.set_exception(refusal(msg.data))
        else:
            fut.set_result(None)

    def _expire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            fut = self._futures.pop(deadlines.popleft()[1], None)
            if fut is not None and not fut.done():
                fut.set_exception(PublishNotAcknowledged(
                    f"no acknowledgement within {self.timeout:g} s"))
        if deadlines:
            self._timer = loop.call_at(deadlines[0][0], self._expire)

    async def publish(self, subject: str, payload: bytes, msg_id: str | None,
                      headers: dict[str, str] | None = None) -> asyncio.Future[None]:
        """Send one message; the future resolves once JetStream stored it. `msg_id`
        None: no de-duplication id (the audit sequencer's appends are guarded by
        `Nats-Expected-Last-Sequence` instead)."""
        return (await self.publish_many([(subject, payload, msg_id, headers)]))[0]

    async def publish_many(self, messages: Iterable[Outgoing]) -> list[asyncio.Future[None]]:
        """`publish` for each message, written to the socket in one go: a fan-out's
        deliveries share their headers, which are rendered once."""
        messages = list(messages)
        for subject, *_ in messages:
            # All checked before any is registered or sent: a refusal sends none.
            if not subject or _UNSAFE.search(subject):
                raise ValueError(f"subject {subject!r}: not a valid NATS subject")
        nc = self.nc
        if not nc.is_connected:
            # Reconnecting: nats-py's own path buffers within its limits, or raises.
            return [await self._publish_reconnecting(*m) for m in messages]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        futures: list[asyncio.Future[None]] = []
        lines: list[bytes] = []
        rendered: dict[int, str] = {}
        prefix = self.prefix
        for subject, payload, msg_id, headers in messages:
            token = self._register(loop, deadline, futures)
            if headers:
                # Shared dicts (a routed message's deliveries) are rendered once.
                hdr = rendered.get(id(headers))
                if hdr is None:
                    hdr = rendered[id(headers)] = "NATS/1.0\r\n" + "".join(
                        f"{k}: {str(v).strip().translate(_NO_NEWLINES)}\r\n"
                        for k, v in headers.items())
                if msg_id is not None:
                    head = f"{hdr}Nats-Msg-Id: {msg_id.translate(_NO_NEWLINES)}\r\n\r\n".encode()
                else:
                    head = (hdr + "\r\n").encode()
            elif msg_id is not None:
                head = b"NATS/1.0\r\nNats-Msg-Id: %s\r\n\r\n" % msg_id.translate(
                    _NO_NEWLINES).encode()
            else:
                head = b"NATS/1.0\r\n\r\n"
            size = len(head)
            lines.append(b"HPUB %s %s.%s %d %d\r\n%s%s\r\n" % (
                subject.encode(), prefix.encode(), token.encode(), size, size + len(payload),
                head, payload))
        if lines:
            await _send(nc, b"".join(lines))
        return futures

    def _register(self, loop: asyncio.AbstractEventLoop, deadline: float,
                  futures: list[asyncio.Future[None]]) -> str:
        """A reply token and its future, expiring at `deadline`."""
        self._n += 1
        token = f"{self._n:x}"
        fut: asyncio.Future[None] = loop.create_future()
        self._futures[token] = fut
        futures.append(fut)
        self._deadlines.append((deadline, token))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)
        return token

    async def _publish_reconnecting(self, subject: str, payload: bytes, msg_id: str | None,
                                    headers: dict[str, str] | None) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        token = self._register(loop, loop.time() + self.timeout, futures)
        hdrs = dict(headers) if headers else {}
        if msg_id is not None:
            hdrs["Nats-Msg-Id"] = msg_id
        await self.nc.publish(subject, payload, reply=f"{self.prefix}.{token}",
                              headers=hdrs or None)
        return futures[0]

    async def wait(self, futures: list[asyncio.Future[None]]) -> None:
        """Every one stored, or the first failure raised (each publish has its own
        deadline, so this never waits longer than `timeout` past the last publish)."""
        try:
            for f in futures:
                await f
        except BaseException:
            for f in futures:
                if not f.done():
                    f.cancel()
                elif not f.cancelled():
                    f.exception()  # retrieved: asyncio must not log it as forgotten
            raise

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def _send(nc: NATS, line: bytes) -> None:
    """Queue one protocol line and kick nats-py's flusher, as `Client.publish` does."""
    await nc._send_command(line)
    if nc._flush_queue is not None and nc._flush_queue.empty():
        await nc._flush_pending()


async def ack(nc: NATS, msgs: Iterable[Msg]) -> None:
    """Acknowledge pulled messages: an empty message to each one's reply subject, what
    `Msg.ack` sends, in one flush."""
    sent = False
    for msg in msgs:
        if msg.reply:
            await nc._send_command(b"PUB %s 0\r\n\r\n" % msg.reply.encode())
            sent = True
    if sent and nc._flush_queue is not None and nc._flush_queue.empty():
        await nc._flush_pending()


class Inline(asyncio.Future[Msg]):
    """Hands every message of a subscription to `handle` from nats-py's reading loop.

    nats-py resolves the future a subscription was made with (its request/reply path)
    for each message that arrives, and never waits on it; a subscription with a
    callback instead queues each message for a task of its own. An answer is a few
    comparisons: the queue and the task switch were most of its cost."""

    def __init__(self, handle: Callable[[Msg], None]) -> None:
        super().__init__()
        self._handle = handle

    def set_result(self, result: Msg, /) -> None:
        try:
            self._handle(result)
        except Exception as exc:  # never into nats-py's reading loop: it would stop
            asyncio.get_running_loop().call_exception_handler(
                {"message": "a subscription's inline handler failed", "exception": exc})
