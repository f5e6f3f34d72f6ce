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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg


class PublishNotAcknowledged(RuntimeError):
    """JetStream refused or did not answer; `err_code` is JetStream's error code when it
    gave one (10071: wrong last sequence), else 0."""

    def __init__(self, text: str, err_code: int = 0) -> None:
        super().__init__(text)
        self.err_code = err_code


def _refusal(data: bytes) -> PublishNotAcknowledged:
    text = data[:200].decode(errors="replace")
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
        await self.nc.subscribe(self.prefix + ".*", cb=self._on_ack)

    async def _on_ack(self, msg: Msg) -> None:
        fut = self._futures.pop(msg.subject.rsplit(".", 1)[1], None)
        if fut is None or fut.done():
            return
        # Stored or duplicate: {"stream":..,"seq":..}. Failure: {"error":..}, or a status
        # header (503: no stream listens on the subject).
        if b'"error"' in msg.data or (msg.headers and msg.headers.get("Status")):
            fut.set_exception(_refusal(msg.data))
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
        self._n += 1
        token = f"{self._n:x}"
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._futures[token] = fut
        deadline = loop.time() + self.timeout
        self._deadlines.append((deadline, token))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)
        hdrs = dict(headers) if headers else {}
        if msg_id is not None:
            hdrs["Nats-Msg-Id"] = msg_id
        await self.nc.publish(subject, payload, reply=f"{self.prefix}.{token}",
                              headers=hdrs or None)
        return fut

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
