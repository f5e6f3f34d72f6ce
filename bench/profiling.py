"""Profile the broker's hot path: `python -m bench.profiling [N] [--all]
[--no-profile] [--fed N] [--html FILE]`
(`--all`: every frame; `--no-profile`: rate only;
`--fed N`: N focal points in the federation, default 195).

A backlog of N pre-sealed 1 KB reports is queued in SUBMIT first (NATS and the audit
sequencer run in a child process, as in `orcon bench`); then one broker is started in
this process under pyinstrument, and the profile covers exactly the time it takes to
drain the backlog. Prints pyinstrument's text report and the broker's rate.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

from bench.load import (
    SENDER,
    Children,
    Watcher,
    broker_dial,
    focal_ids,
    local_client,
    preseal,
    report_1k,
    submit_all,
    write_federation,
)
from broker.routing.service import Broker, BrokerConfig
from keys.directory import Directory
from policies.engine import PolicyEngine
from policies.federation import load_federation
from transport.connection import load_connection


async def profile(n: int, html: Path | None, profiling: bool = True,
                  focal: int = 195) -> None:
    from pyinstrument import Profiler

    # The stack child encrypts its keys with it, the load generator reads them back.
    os.environ.setdefault("ORCON_PASSPHRASE", secrets.token_urlsafe(24))
    with tempfile.TemporaryDirectory(prefix="orcon-profile-") as tmp:
        work = Path(tmp)
        fed_path, data_dir = work / "federation.toml", work / "stack"
        (work / "logs").mkdir()
        write_federation(fed_path, focal)
        children = Children(work / "logs")
        try:
            await children.start("stack", ["-m", "bench.proc", "stack", str(data_dir),
                                           str(fed_path)], ready=True, timeout=120)
            conn = load_connection(data_dir)
            assert conn.broker_nkey is not None
            sender = await local_client(conn, SENDER)
            sealed = preseal(sender, report_1k(), [focal_ids(1)[0]], n)
            await submit_all(sender.js, sealed)
            await sender.close()

            watch_nc = await broker_dial(conn, "profile-watch")
            watcher = Watcher()
            watcher.expect(n)
            await watch_nc.subscribe("orcon.deliver.>", cb=watcher.on_msg,
                                     pending_msgs_limit=10**6, pending_bytes_limit=2**30)
            nc = await broker_dial(conn, "broker-profile")
            broker = Broker(nc, PolicyEngine(load_federation(Path(conn.federation))),
                            Directory.load(Path(conn.directory).read_bytes(),
                                           bytes.fromhex(conn.root_public)),
                            BrokerConfig(broker_id="broker-profile"))
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
    print(f"{n} messages drained by one in-process broker in "
          f"{elapsed:.2f} s: {n / elapsed:,.0f} msg/s, {cpu / n * 1e6:,.0f} µs CPU per message"
          f"{' (under the profiler)' if profiling else ''}")


def main(argv: list[str]) -> int:
    from clients.cli.logs import configure

    configure(json=True)  # as `orcon broker` logs, so the logging cost is in the profile
    n = int(argv[0]) if argv and argv[0].isdigit() else 3000
    html = Path(argv[argv.index("--html") + 1]) if "--html" in argv else None
    focal = int(argv[argv.index("--fed") + 1]) if "--fed" in argv else 195
    asyncio.run(profile(n, html, profiling="--no-profile" not in argv,
                        focal=focal))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
