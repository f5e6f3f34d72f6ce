"""Helpers shared by the fault, load and security tests: broker processes, pre-sealed
submissions, a publisher that retries until JetStream acknowledges, and a recipient
loop that collects what the SDK hands to the application. Nothing here mocks NATS or
the broker: brokers are `orcon broker` processes, the server is the real nats-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from nats.js import JetStreamContext

import schemas
from broker.routing.fairness import queue_state
from clients.sdk.client import AgencyClient, Received
from keys.envelope import seal
from schemas import Category, Level, Restrictions, examples
from transport import subjects as s

REPO = Path(__file__).resolve().parents[2]
ORCON = Path(sys.executable).parent / "orcon"


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def slow() -> bool:
    return os.environ.get("ORCON_SLOW", "") not in ("", "0")


def _die_with_parent() -> None:
    # A broker process must not outlive a test that crashed.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


@dataclass
class BrokerProcess:
    """One `orcon broker --data-dir D --id X` process."""

    data_dir: Path
    broker_id: str
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir / f"{self.broker_id}.log"

    def start(self, timeout: float = 30.0) -> None:
        logfile = self.log_path.open("ab")
        start_offset = self.log_path.stat().st_size
        try:
            self.proc = subprocess.Popen(
                [str(ORCON), "broker", "--data-dir", str(self.data_dir), "--id", self.broker_id],
                stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=REPO, preexec_fn=_die_with_parent,
            )
        finally:
            logfile.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker {self.broker_id} exited: {self.tail()}")
            with self.log_path.open("rb") as f:
                f.seek(start_offset)
                if b"broker_started" in f.read():
                    return
            time.sleep(0.05)
        raise RuntimeError(f"broker {self.broker_id} did not start within {timeout} s")

    def tail(self, n: int = 5) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds (teardown, not under test)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def body() -> schemas.IntelReport:
    return examples.mekong_route_report()


def preseal(
    client: AgencyClient,
    to: list[str],
    n: int,
    *,
    restrictions: Restrictions | None = None,
    category: Category = Category.ROUTES,
    level: Level = Level.RESTRICTED,
    now: datetime | None = None,
) -> list[tuple[str, bytes]]:
    """`n` signed, sealed submissions (message id, wire bytes), ready to publish."""
    now = now or client.clock()
    recipients = [r for a in to for r in client.directory.recipients_for(a, now)]
    b = body()
    body_bytes = schemas.encode(b)
    out = []
    for _ in range(n):
        header = client.draft(b, category=category, level=level, restrictions=restrictions,
                              to=to)
        env = seal(schemas.encode(header), body_bytes, recipients, client.identity)
        out.append((header.id, schemas.encode_envelope(env)))
    return out


async def publish_all(
    js: JetStreamContext,
    agency: str,
    items: Iterable[tuple[str, bytes]],
    *,
    window: int = 256,
    deadline_s: float = 120.0,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Publish every submission with `Nats-Msg-Id` = message id, retrying each until
    JetStream acknowledges it (so every one is *accepted*); a retry after a lost ack is
    harmless because the server de-duplicates by id. Returns how many retries it took."""
    retries = 0
    deadline = time.monotonic() + deadline_s
    subject = s.submit(agency)

    async def one(mid: str, data: bytes) -> None:
        nonlocal retries
        while True:
            try:
                await js.publish(subject, data, headers={"Nats-Msg-Id": mid}, timeout=5)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                retries += 1
                await asyncio.sleep(0.2)

    batch: list[tuple[str, bytes]] = []
    done = 0
    for item in items:
        batch.append(item)
        if len(batch) >= window:
            await asyncio.gather(*(one(m, d) for m, d in batch))
            done += len(batch)
            batch.clear()
            if on_progress:
                on_progress(done)
    if batch:
        await asyncio.gather(*(one(m, d) for m, d in batch))
        done += len(batch)
        if on_progress:
            on_progress(done)
    return retries


@dataclass
class Collected:
    messages: list[Received] = field(default_factory=list)
    rejected: int = 0

    @property
    def ids(self) -> list[str]:
        return [m.header.id for m in self.messages]


async def collect(
    client: AgencyClient,
    want: set[str],
    got: Collected,
    *,
    deadline_s: float,
    limit: int = 500,
    until: int | None = None,
) -> Collected:
    """Pull the recipient's inbox until every id in `want` was handed over or time is up
    (bounded: never loops forever). Exceptions while NATS is away are retried."""
    deadline = time.monotonic() + deadline_s
    seen = set(got.ids)
    target = len(want) if until is None else until
    while len(seen & want) < target and time.monotonic() < deadline:
        try:
            batch = await client.inbox(limit=limit, timeout=1.0)
        except Exception:
            await asyncio.sleep(0.2)
            continue
        got.messages.extend(batch.messages)
        got.rejected += len(batch.rejected)
        seen.update(m.header.id for m in batch.messages)
    return got


async def submit_state(js: JetStreamContext) -> tuple[int, int, int]:
    """(pending, ack pending, redeliveries so far) of the submission queue: the sum over
    every agency's submit consumer (broker/routing/fairness.py)."""
    state = await queue_state(js)
    return state.pending, state.ack_pending, state.redelivered


async def consumer_state(js: JetStreamContext, stream: str, consumer: str) -> tuple[int, int, int]:
    """(pending, ack pending, redeliveries so far) of a durable consumer. Redeliveries are
    deliveries beyond the first of each stream message: the consumer sequence counts
    every delivery, the stream sequence each message once."""
    info = await js.consumer_info(stream, consumer)
    extra = (info.delivered.consumer_seq or 0) - (info.delivered.stream_seq or 0)
    return info.num_pending or 0, info.num_ack_pending or 0, extra
