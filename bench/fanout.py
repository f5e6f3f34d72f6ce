"""The fan-out alone: `python -m bench.fanout [RUNS] [--fed N]`.

NATS and the audit sequencer in one child process, one `orcon broker` in another (as in
`orcon bench`), then RUNS alerts, one at a time, each sealed to every focal point: the
time from the submission to the last delivery stored, and the CPU per alert of the
broker and of the sequencer's process (NATS runs apart). A quicker loop than `orcon
bench` for work on the fan-out.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tempfile
from pathlib import Path

from bench.load import (
    SENDER,
    Children,
    Live,
    Watcher,
    alert_body,
    broker_dial,
    fanout,
    local_client,
    preseal,
    proc_status,
    start_broker,
    write_federation,
)
from schemas import Category
from transport.connection import load_connection


async def measure(runs: int, focal: int) -> dict[str, float]:
    os.environ.setdefault("ORCON_PASSPHRASE", secrets.token_urlsafe(24))
    with tempfile.TemporaryDirectory(prefix="orcon-fanout-") as tmp:
        work = Path(tmp)
        fed_path, data_dir = work / "federation.toml", work / "stack"
        (work / "logs").mkdir()
        ids = write_federation(fed_path, focal)
        children = Children(work / "logs")
        try:
            stack, _ = await children.start(
                "stack", ["-m", "bench.proc", "stack", str(data_dir), str(fed_path)],
                ready=True, timeout=180)
            conn = load_connection(data_dir)
            admin = await broker_dial(conn, "fanout")
            watcher = await Watcher.on(admin)
            sender = await local_client(conn, SENDER)
            live = Live(conn, admin, sender, watcher)
            broker = await start_broker(children, data_dir, admin.jetstream(), "broker-1", 1)
            warm = preseal(sender, alert_body(), ids, 3, category=Category.GROUPS)
            await fanout(live, warm, len(ids), 60)
            alerts = preseal(sender, alert_body(), ids, runs, category=Category.GROUPS)
            b0 = proc_status(broker.pid).get("cpu_s", 0.0)
            s0 = proc_status(stack.pid).get("cpu_s", 0.0)
            out = await fanout(live, alerts, len(ids), 60)
            out["broker_cpu_ms_per_alert"] = (
                (proc_status(broker.pid).get("cpu_s", 0.0) - b0) / runs * 1e3)
            out["stack_cpu_ms_per_alert"] = (
                (proc_status(stack.pid).get("cpu_s", 0.0) - s0) / runs * 1e3)
            await sender.close()
            await admin.close()
            return out
        finally:
            await children.stop_all()


def main(argv: list[str]) -> int:
    runs = int(argv[0]) if argv and argv[0].isdigit() else 30
    focal = int(argv[argv.index("--fed") + 1]) if "--fed" in argv else 195
    out = asyncio.run(measure(runs, focal))
    print(f"fan-out to {focal}: median {out['median_ms']:.2f} ms, "
          f"min {out['min_ms']:.2f}, max {out['max_ms']:.2f} ({runs} runs); CPU per alert: "
          f"broker {out['broker_cpu_ms_per_alert']:.1f} ms, the sequencer's process "
          f"{out['stack_cpu_ms_per_alert']:.1f} ms; load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
