"""Acknowledged JetStream publishing without per-message overhead.

nats-py's `js.publish` pays, for every message, a request-inbox token, an
`asyncio.wait_for` timer task, a JSON parse into a PubAck, and (under `gather`) a task
of its own. Profiling put that at more than half of the broker's time (docs/bench.md,
"Profile"). This publisher does what Go's PublishAsync does: one wildcard reply
subscription, one future per message, one deadline per batch. The semantics are the
same: a publish counts only once JetStream has stored it (or recognised it as a
duplicate of its `Nats-Msg-Id`); anything else raises, leaving the submission
unacknowledged for JetStream to redeliver.
"""

from __future__ import annotations

import asyncio

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg


class PublishNotAcknowledged(RuntimeError):
    pass


class AckPublisher:
    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self.prefix = nc.new_inbox()
        self._futures: dict[str, asyncio.Future[None]] = {}
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
            fut.set_exception(PublishNotAcknowledged(msg.data[:200].decode(errors="replace")))
        else:
            fut.set_result(None)

    async def publish(self, subject: str, payload: bytes, msg_id: str,
                      headers: dict[str, str] | None = None) -> asyncio.Future[None]:
        self._n += 1
        token = f"{self._n:x}"
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._futures[token] = fut
        fut.add_done_callback(lambda _f, t=token: self._futures.pop(t, None))  # type: ignore[misc]
        await self.nc.publish(subject, payload, reply=f"{self.prefix}.{token}",
                              headers={**(headers or {}), "Nats-Msg-Id": msg_id})
        return fut

    async def wait(self, futures: list[asyncio.Future[None]], timeout: float = 5.0) -> None:
        try:
            await asyncio.wait_for(asyncio.gather(*futures), timeout)
        finally:
            for f in futures:
                if not f.done():
                    f.cancel()
