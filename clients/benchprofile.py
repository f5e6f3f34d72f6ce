"""Profile the broker's hot path: `python -m clients.benchprofile [N] [--all] [--lean]
[--no-profile] [--fed N] [--html FILE]`
(`--all`: every frame; `--lean`: with the proposed AckPublisher; `--no-profile`: rate only;
`--fed N`: N focal points in the federation, default 195).

A backlog of N pre-sealed 1 KB reports is queued in SUBMIT first (NATS and the audit
sequencer run in a child process, as in `orcon bench`); then one broker is started in
this process under pyinstrument, and the profile covers exactly the time it takes to
drain the backlog. Prints pyinstrument's text report and the broker's rate.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from broker.service import Broker, BrokerConfig
from clients.benchload import (
    SENDER,
    Children,
    Watcher,
    focal_ids,
    local_client,
    preseal,
    report_1k,
    submit_all,
    write_federation,
)
from clients.connection import load_connection
from keys.directory import Directory
from policies.engine import PolicyEngine
from policies.federation import load_federation


class AckPublisher:
    """JetStream publish with acknowledgements, the way Go's PublishAsync does it: one
    wildcard reply subscription, one future per message, one deadline per batch. nats-py's
    `js.publish` pays per message a request inbox token, an `asyncio.wait_for` timer (a
    task), a JSON parse into a PubAck dataclass; with `gather` also one task each.
    (Proposed as broker/jspub.py; see docs/bench.md, "Profile".)"""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self.prefix = nc.new_inbox()
        self.futures: dict[str, asyncio.Future[None]] = {}
        self.n = 0

    async def start(self) -> None:
        await self.nc.subscribe(self.prefix + ".*", cb=self._on_ack)

    async def _on_ack(self, msg: Msg) -> None:
        fut = self.futures.pop(msg.subject.rsplit(".", 1)[1], None)
        if fut is None or fut.done():
            return
        # A stored or duplicate message acks with {"stream":..,"seq":..}; a failure with
        # {"error":..}, or a status header (503: no stream took the subject).
        if b'"error"' in msg.data or (msg.headers and msg.headers.get("Status")):
            fut.set_exception(RuntimeError(f"publish not acknowledged: {msg.data[:200]!r}"))
        else:
            fut.set_result(None)

    async def publish(self, subject: str, payload: bytes, msg_id: str) -> asyncio.Future[None]:
        self.n += 1
        token = f"{self.n:x}"
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.futures[token] = fut
        # A future that times out or is cancelled leaves the table too.
        fut.add_done_callback(lambda _f, t=token: self.futures.pop(t, None))  # type: ignore[misc]
        await self.nc.publish(subject, payload, reply=f"{self.prefix}.{token}",
                              headers={"Nats-Msg-Id": msg_id})
        return fut

    async def wait(self, futures: list[asyncio.Future[None]], timeout: float = 5.0) -> None:
        try:
            await asyncio.wait_for(asyncio.gather(*futures), timeout)
        finally:
            for f in futures:
                if not f.done():
                    f.cancel()


def lean_publish(broker: Broker, pub: AckPublisher) -> Any:
    """Broker._publish with the same semantics (deliveries and audit events durable
    before the outcome report), on AckPublisher."""
    from broker import subjects as s
    from broker.audit.events import encode_event
    from broker.audit.stream import event_with_id
    from broker.service import Routed
    from schemas import encode

    async def _publish(routed: Routed) -> None:
        mid = routed.outcome.message_id
        futs = [await pub.publish(s.deliver(r), env, f"{mid}:{r}")
                for r, env in routed.deliveries.items()]
        futs += [await pub.publish(s.AUDIT_IN_SUBJECT, encode_event(event_with_id(ev, key)), key)
                 for key, ev in routed.events]
        await pub.wait(futs)
        if routed.outcome.sender and s.AGENCY_ID_RE.match(routed.outcome.sender):
            await pub.wait([await pub.publish(s.report(routed.outcome.sender),
                                              encode(routed.outcome),
                                              f"{mid or id(routed)}:outcome")])

    return _publish


async def profile(n: int, html: Path | None, lean: bool = False,
                  profiling: bool = True, focal: int = 195) -> None:
    from pyinstrument import Profiler

    with tempfile.TemporaryDirectory(prefix="orcon-profile-") as tmp:
        work = Path(tmp)
        fed_path, data_dir = work / "federation.toml", work / "stack"
        (work / "logs").mkdir()
        write_federation(fed_path, focal)
        children = Children(work / "logs")
        try:
            await children.start("stack", ["-m", "clients.benchproc", "stack", str(data_dir),
                                           str(fed_path)], ready=True, timeout=120)
            conn = load_connection(data_dir)
            assert conn.broker_nkey is not None
            sender = await local_client(conn, SENDER)
            sealed = preseal(sender, report_1k(), [focal_ids(1)[0]], n)
            await submit_all(sender.js, sealed)
            await sender.close()

            watch_nc = await nats.connect(conn.url, nkeys_seed=conn.broker_nkey)
            watcher = Watcher()
            watcher.expect(n)
            await watch_nc.subscribe("orcon.deliver.*", cb=watcher.on_msg,
                                     pending_msgs_limit=10**6, pending_bytes_limit=2**30)
            nc = await nats.connect(conn.url, nkeys_seed=conn.broker_nkey)
            broker = Broker(nc, PolicyEngine(load_federation(Path(conn.federation))),
                            Directory.load(Path(conn.directory).read_bytes(),
                                           bytes.fromhex(conn.root_public)),
                            BrokerConfig(broker_id="broker-profile"))
            if lean:
                pub = AckPublisher(nc)
                await pub.start()
                broker._publish = lean_publish(broker, pub)  # type: ignore[method-assign]
            profiler = Profiler(interval=0.0005, async_mode="disabled")
            if profiling:
                profiler.start()
            t0, cpu0 = time.perf_counter(), time.process_time()
            await broker.start()
            await watcher.wait(300, "profile drain")
            elapsed, cpu = watcher.last - t0, time.process_time() - cpu0
            if profiling:
                profiler.stop()
            await broker.stop()
            await nc.close()
            await watch_nc.close()
        finally:
            await children.stop_all()
    if profiling:
        print(profiler.output_text(unicode=True, color=False, show_all="--all" in sys.argv))
        if html is not None:
            html.write_text(profiler.output_html())
    print(f"{n} messages drained by one in-process broker{' (lean)' if lean else ''} in "
          f"{elapsed:.2f} s: {n / elapsed:,.0f} msg/s, {cpu / n * 1e6:,.0f} µs CPU per message"
          f"{' (under the profiler)' if profiling else ''}")


def main(argv: list[str]) -> int:
    from clients.logs import configure

    configure(json=True)  # as `orcon broker` logs, so the logging cost is in the profile
    n = int(argv[0]) if argv and argv[0].isdigit() else 3000
    html = Path(argv[argv.index("--html") + 1]) if "--html" in argv else None
    focal = int(argv[argv.index("--fed") + 1]) if "--fed" in argv else 195
    asyncio.run(profile(n, html, lean="--lean" in argv, profiling="--no-profile" not in argv,
                        focal=focal))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
