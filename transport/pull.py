"""Standing pull requests on many JetStream consumers, answered into one callback.

nats-py's `fetch` costs, per call, a request, a wait with a timer and a hand-over
through a queue, and its caller waits for a batch before asking again (profile:
docs/bench.md). Here each consumer keeps pull requests outstanding for as many
messages as its owner has room for; every message arrives through one wildcard
subscription. A message keeps its stream subject (`key_of` names its consumer from it)
and counts against the oldest open request of that consumer (the server serves a
consumer's waiting requests in order); a status message comes on the request's own
reply subject (`<inbox>.<key>.<token>`). A request ends when it is fulfilled, when the
server says so (a status message: 404, 408 expired, 409), or at its local deadline,
which covers requests a server restart forgot and any drift in the count.

A status message is told from a message by its reply subject: every JetStream
delivery carries a `$JS.ACK` reply, a status never does. (A `Status` header alone
would not do: a submitter may set any header it likes.)

Stopping: the server counts what it sends into a request as delivered (ack pending)
whether or not anyone still reads it, and a plain unsubscribe drops what is already
on the wire. So `stop` asks for nothing more and keeps handing over what arrives while
the server is still sending: until every open request has ended (fulfilled, a status,
its deadline) or nothing at all has come for `QUIET_S` and a round trip (a request
still open then waits on an idle consumer, which sends nothing). Then it drains the
subscription: the server drops the interest (no request of ours is served after
that), a round trip, and what arrived before it is handed over. A delivery the server
picked for us in the instant the interest went away is not lost either: the server
finds no one to deliver it to and queues it again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from transport.jspub import Inline

EXPIRES_S = 5.0
GRACE_S = 1.0  # past the server's expiry: its 408 normally comes first
# While the server sends, messages follow each other within microseconds; this long
# without any, plus a round trip, and it has nothing more for us.
QUIET_S = 0.025


class StandingPulls:
    """`on_msg(key, msg)` for every message; `room(key)` how many more `key` may take."""

    def __init__(self, nc: NATS, stream: str, on_msg: Callable[[str, Msg], None],
                 room: Callable[[str], int], key_of: Callable[[Msg], str], *,
                 expires: float = EXPIRES_S,
                 min_request: int = 16) -> None:
        self.nc = nc
        self.stream = stream
        self.on_msg = on_msg
        self.room = room
        self.key_of = key_of
        self.expires = expires
        self.min_request = min_request
        self.prefix = nc.new_inbox()
        self._consumers: dict[str, str] = {}  # key -> consumer name
        self._open: dict[str, dict[str, list[float]]] = {}  # key -> token -> [owed, deadline]
        self._n = 0
        self._sub: Subscription | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._ended = asyncio.Event()  # while stopping: no request is open any more

    async def start(self) -> None:
        # Handled inline in nats-py's reading loop (jspub.Inline): `on_msg` only queues,
        # and a task switch per message was a tenth of the broker's time.
        self._sub = await self.nc.subscribe(self.prefix + ".>", future=Inline(self._on_msg))

    async def stop(self) -> None:
        """Ask for nothing more, hand over what is still on its way, then unsubscribe
        (see the module's docstring)."""
        self._stopping = True
        sub = self._sub
        seen = -1
        while sub is not None and self._expire(asyncio.get_running_loop().time()):
            if sub.delivered == seen:
                with contextlib.suppress(Exception):
                    await self.nc.flush(timeout=2)
                if sub.delivered == seen:
                    break
            seen = sub.delivered
            self._ended.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ended.wait(), timeout=QUIET_S)
        self._sub = None
        if sub is not None:
            try:
                await sub.drain()  # type: ignore[no-untyped-call]  # unannotated in nats-py
            except Exception:  # a closed or reconnecting connection: nothing more comes
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    def _expire(self, now: float) -> bool:
        """Forget requests past their deadline; whether any request is still open."""
        open_ = False
        for requests in self._open.values():
            for token in [t for t, (_, deadline) in requests.items() if deadline <= now]:
                del requests[token]
            open_ = open_ or bool(requests)
        return open_

    def _ended_one(self) -> None:
        if self._stopping and not any(self._open.values()):
            self._ended.set()

    def add(self, key: str, consumer: str) -> None:
        self._consumers[key] = consumer
        self._open.setdefault(key, {})

    def has(self, key: str) -> bool:
        return key in self._consumers

    def owed(self, key: str) -> int:
        return int(sum(o for o, _ in self._open.get(key, {}).values()))

    def top_up(self, key: str) -> None:
        """Ask for what `key` has room for beyond what is already asked for: at once
        when nothing is asked for, else once the gap is worth a request."""
        if self._sub is None or self._stopping or key not in self._consumers:
            return
        owed = self.owed(key)
        want = self.room(key) - owed
        if want <= 0 or (owed > 0 and want < self.min_request):
            return
        self._n += 1
        token = f"{self._n:x}"
        loop = asyncio.get_running_loop()
        self._open[key][token] = [float(want), loop.time() + self.expires + GRACE_S]
        payload = json.dumps({"batch": want, "expires": int(self.expires * 1e9)}).encode()
        task = loop.create_task(self.nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self._consumers[key]}", payload,
            reply=f"{self.prefix}.{key}.{token}"))
        self._sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if not task.cancelled():
            # Connection trouble: the request's deadline ends it and `tick` asks again.
            task.exception()

    def tick(self) -> None:
        """End requests past their deadline, and ask again wherever nothing is asked."""
        self._expire(asyncio.get_running_loop().time())
        for key in self._open:
            self.top_up(key)

    def _on_msg(self, msg: Msg) -> None:
        if not msg.reply:  # a status: the request is over (or a heartbeat we never ask for)
            key, _, token = msg.subject[len(self.prefix) + 1:].rpartition(".")
            requests = self._open.get(key)
            if requests is not None:
                requests.pop(token, None)
                # An expired request is asked again at once; any other refusal (409:
                # too many waiting requests, a leadership change...) waits for `tick`,
                # so a server that refuses every request is not asked in a tight loop.
                if msg.headers and msg.headers.get("Status") == "408":
                    self.top_up(key)
                self._ended_one()
            return
        key = self.key_of(msg)
        requests = self._open.get(key)
        if requests:
            token, entry = next(iter(requests.items()))
            entry[0] -= 1
            if entry[0] <= 0:
                del requests[token]
                self._ended_one()
        self.on_msg(key, msg)
