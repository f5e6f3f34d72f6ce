"""Per-agency fair scheduling of submissions.

Each agency's submissions come through a consumer of their own (`subjects.
submit_consumer`), so the server keeps one queue per agency instead of one line for
everyone. A broker keeps at most `per_agency` submissions of any one agency in hand,
and its workers take them round-robin over the agencies that have work: an agency that
floods the broker with 100,000 submissions gets one turn in each round, like everybody
else, and another agency's message waits for at most one submission per busy agency.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from transport import subjects as s

BACKLOG = 8
PACE = 8  # junk submissions taken together by an agency over its budget


class BudgetSettings(Protocol):
    """What a JunkBudget reads, each time (BrokerConfig has it)."""

    @property
    def junk_burst(self) -> int: ...
    @property
    def junk_per_s(self) -> float: ...
    @property
    def clock(self) -> Callable[[], datetime]: ...


class JunkBudget:
    """How many junk submissions (ones that fail before or at verification) each agency
    may cost the broker: `junk_burst` at once, then `junk_per_s`. A token bucket per
    agency. Junk is only known once handled, so every submission reserves a token when
    it is taken and gets it back unless it was junk.

    Why: each junk submission costs a decode and a signature check, and one agency's
    flood kept the broker's CPU (and the server's) saturated, so every other agency's
    message waited for a share of it. Over its budget, an agency's submissions wait in
    its own queue, charged to its own storage quota, and are taken as the budget
    refills: nothing is dropped, each still gets its typed rejection and its count in
    the aggregated audit record, and a signed message of that agency is routed as
    usual, only later. An honest agency never comes near the budget."""

    def __init__(self, settings: BudgetSettings) -> None:
        self.settings = settings
        self._state: dict[str, tuple[float, datetime]] = {}  # agency -> (tokens, as of)

    def _level(self, agency: str) -> float:
        cfg = self.settings
        now = cfg.clock()
        tokens, at = self._state.get(agency, (float(cfg.junk_burst), now))
        tokens = min(float(cfg.junk_burst),
                     tokens + max(0.0, (now - at).total_seconds()) * cfg.junk_per_s)
        self._state[agency] = (tokens, now)
        return tokens

    def wait(self, agency: str) -> float:
        """Seconds until `agency` may be served again (0: now). Once over its budget, it
        is served again when `PACE` tokens have come back: a few at a time, because each
        wake-up, socket read and flush costs as much as the junk it serves."""
        state = self._state.get(agency)
        if state is None or state[0] >= 1.0:
            # Tokens only grow with time: no clock read on every honest submission. The
            # refill since `as of` is counted when the level is next needed, so after a
            # quiet spell an agency can get up to twice the burst at once.
            return 0.0
        level = self._level(agency)
        if level >= 1.0:
            return 0.0
        rate = self.settings.junk_per_s
        want = min(float(PACE), float(self.settings.junk_burst))
        return min(1.0, (want - level) / rate) if rate > 0 else 1.0

    def reserve(self, agency: str) -> None:
        tokens, at = self._state.get(agency) or (self._level(agency), self.settings.clock())
        self._state[agency] = (tokens - 1.0, at)

    def refund(self, agency: str) -> None:
        """The submission taken was not junk."""
        tokens, at = self._state.get(agency) or (self._level(agency), self.settings.clock())
        self._state[agency] = (min(float(self.settings.junk_burst), tokens + 1.0), at)


class FairQueue:
    """`per_agency`: most submissions of one agency in hand (fetched, not yet done).
    `workers`: how many are handled at once. Alone, an agency may use every worker;
    while several agencies have work, each gets an equal share, and one with a backlog
    (`BACKLOG` or more queued) at most 2 at a time and none while a lighter agency's
    submission is in progress, so another agency's message does not wait behind a crowd
    of the flooder's steps on the shared event loop. A backlog drains in every gap."""

    def __init__(self, per_agency: int, workers: int = 128) -> None:
        self.per_agency = per_agency
        self.workers = workers
        self._queues: dict[str, deque[Msg]] = {}
        self._held: dict[str, int] = {}  # queued + being handled, per agency
        self._busy: dict[str, int] = {}  # being handled, per agency
        self._active = 0  # agencies with anything held
        self._light = 0  # submissions in progress taken from agencies without a backlog
        self._light_msgs: set[int] = set()
        self._room: dict[str, asyncio.Event] = {}
        self._ring: deque[str] = deque()  # agencies with queued work, in turn order
        # Idle workers, each woken alone: one Event shared by every worker woke all of
        # them on each put and done, and each looked at the ring for nothing (profile:
        # a fifth of the broker's time). A worker that takes a submission while more
        # is queued wakes the next, so every startable submission finds a worker.
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.on_done: Callable[[str], None] | None = None  # an agency has room again
        self.budget: JunkBudget | None = None
        self._resume: dict[str, asyncio.TimerHandle] = {}  # agencies waiting for budget

    def room(self, agency: str) -> int:
        """How many more submissions of `agency` may be fetched now."""
        return self.per_agency - self._held.get(agency, 0)

    async def wait_room(self, agency: str) -> None:
        event = self._room.setdefault(agency, asyncio.Event())
        event.clear()
        if self.room(agency) > 0:
            return
        await event.wait()

    def put_one(self, agency: str, msg: Msg) -> None:
        self.put(agency, [msg])

    def put(self, agency: str, msgs: list[Msg]) -> None:
        if not msgs:
            return
        queue = self._queues.setdefault(agency, deque())
        if not queue:
            self._ring.append(agency)
        queue.extend(msgs)
        held = self._held.get(agency, 0)
        if held == 0:
            self._active += 1
        self._held[agency] = held + len(msgs)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def _backlogged(self, agency: str) -> bool:
        return len(self._queues[agency]) >= BACKLOG

    def _over_budget(self, agency: str) -> bool:
        if self.budget is None:
            return False
        if agency in self._resume:  # known to be over until its timer fires
            return True
        delay = self.budget.wait(agency)
        if delay <= 0:
            return False
        self._resume[agency] = asyncio.get_running_loop().call_later(
            delay, self._budget_back, agency)
        return True

    def _budget_back(self, agency: str) -> None:
        self._resume.pop(agency, None)
        self._wake_one()

    def _may_start(self, agency: str) -> bool:
        busy = self._busy.get(agency, 0)
        if self._active <= 1:
            return busy < self.workers
        if self._backlogged(agency):
            # Behind a backlog while others have work too: the event loop is shared,
            # and each of its submissions in progress delays everybody's next step. It
            # gets 2 at a time, and none while a lighter agency's is being handled.
            return busy < 2 and self._light == 0
        return busy < max(2, self.workers // self._active)

    async def take(self, stop: asyncio.Event) -> tuple[str, Msg] | None:
        """The next submission, one from each agency with work in turn; None once `stop`
        is set and nothing is queued."""
        while True:
            # Stopping: what is in hand is finished whatever the budget says.
            item = self._take_now(budgeted=not stop.is_set())
            if item is not None:
                if self._ring:
                    self._wake_one()
                return item
            if not self._ring and stop.is_set():
                return None
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake_one()  # woken, then cancelled: pass the turn on
                raise

    def take_more(self, stop: asyncio.Event) -> tuple[str, Msg] | None:
        """The next submission if one may start now, else None (never waits): a worker
        that took one takes what else it may handle together with it."""
        return self._take_now(budgeted=not stop.is_set())

    def _take_now(self, budgeted: bool = True) -> tuple[str, Msg] | None:
        for _ in range(len(self._ring)):
            agency = self._ring[0]
            if not self._may_start(agency) or (budgeted and self._over_budget(agency)):
                self._ring.rotate(-1)
                continue
            if self.budget is not None:
                self.budget.reserve(agency)
            if not self._backlogged(agency):
                self._light += 1
                self._light_msgs.add(id(self._queues[agency][0]))
            self._ring.popleft()
            queue = self._queues[agency]
            msg = queue.popleft()
            if queue:
                self._ring.append(agency)
            self._busy[agency] = self._busy.get(agency, 0) + 1
            return agency, msg
        return None

    def done(self, agency: str, msg: Msg) -> None:
        """`msg` of `agency` was acknowledged (or handed back)."""
        if id(msg) in self._light_msgs:
            self._light_msgs.discard(id(msg))
            self._light = max(0, self._light - 1)
        self._busy[agency] = max(0, self._busy.get(agency, 0) - 1)
        held = max(0, self._held.get(agency, 0) - 1)
        self._held[agency] = held
        if held == 0:
            self._active = max(0, self._active - 1)
        event = self._room.get(agency)
        if event is not None:
            event.set()
        self._wake_one()
        if self.on_done is not None:
            self.on_done(agency)

    def wake(self) -> None:
        """Let every waiting worker look again (used when stopping)."""
        for handle in self._resume.values():
            handle.cancel()
        self._resume.clear()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
        for event in self._room.values():
            event.set()


@dataclass(frozen=True)
class QueueState:
    """The submission queue over every agency's consumer."""

    pending: int  # stored, not yet handed to a broker
    ack_pending: int  # handed to a broker, not yet acknowledged
    redelivered: int  # deliveries beyond the first of each submission so far
    waiting: int  # pull requests brokers have outstanding


async def queue_state(js: JetStreamContext) -> QueueState:
    pending = ack_pending = waiting = deliveries = 0
    prefix = s.submit_consumer("XX")[:-2]
    offset = 0
    while True:
        page = await js.consumers_info(s.SUBMIT_STREAM, offset=offset)
        for ci in page:
            if not (ci.name or "").startswith(prefix):
                continue
            pending += ci.num_pending or 0
            ack_pending += ci.num_ack_pending or 0
            waiting += ci.num_waiting or 0
            deliveries += (ci.delivered.consumer_seq or 0) if ci.delivered else 0
        if len(page) < 256:  # the server's page size
            break
        offset += len(page)
    # A consumer's stream sequence is global, so redeliveries are counted over the
    # stream: every submission ever stored and no longer pending was delivered once.
    info = await js.stream_info(s.SUBMIT_STREAM)
    stored_ever = info.state.last_seq or 0
    redelivered = max(0, deliveries - (stored_ever - pending))
    return QueueState(pending, ack_pending, redelivered, waiting)
