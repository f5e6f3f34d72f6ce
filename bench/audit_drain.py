"""The audit sequencer's figures alone, in ~half a minute: `python -m bench.audit_drain
[--rounds R] [--n N] [--events E] [--federation F] [--paced RATES] [--py-spy DIR |
--strace FILE | --cprofile FILE]`.

The same phases as `orcon bench` measures them (bench/load.py), nothing else: the stack
child (nats-server + audit sequencer + watchers), audit events appended end to end
(`audit_appends_e2e_per_s`, `sequencer_cpu_us_per_entry`), then one broker child and R
backlog drains of N pre-sealed 1 KB reports, each giving the stack process's CPU per
routed message (`sequencer_cpu_us_per_msg`). CPU, not wall time, is what compares on
a shared machine. `--paced 0,2000` also publishes broker-like events at those rates
with no broker running (how the cost depends on the way the input arrives).

`--py-spy DIR` records the stack process during the drains (the py-spy binary from
PATH or $PY_SPY) into DIR/stack.txt (collapsed stacks); `--strace FILE` counts its
system calls instead (the main thread's); `--cprofile FILE` runs it under cProfile,
timed by CPU time, during the drains (a ~4x slowdown: proportions only).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS

from bench.load import (
    SENDER,
    Children,
    Live,
    Watcher,
    audit_end_to_end,
    broker_dial,
    drain,
    local_client,
    preseal,
    proc_status,
    report_1k,
    start_broker,
    write_federation,
)
from transport.connection import load_connection


async def measure(rounds: int, n: int, events: int, federation: int,
                  spy: Path | None, syscalls: Path | None = None,
                  cprofile: Path | None = None,
                  paced: Sequence[float] = ()) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orcon-audit-drain-") as tmp:
        work = Path(tmp)
        data_dir, fed_path = work / "stack", work / "federation.toml"
        (work / "logs").mkdir()
        focal = write_federation(fed_path, federation)
        children = Children(work / "logs")
        live: Live | None = None
        admin: NATS | None = None
        spy_proc: asyncio.subprocess.Process | None = None
        out: dict[str, Any] = {}
        try:
            os.environ.setdefault("ORCON_PASSPHRASE", secrets.token_urlsafe(24))
            stack, _ = await children.start(
                "stack", [*(["-m", "bench.audit_drain", "--cprofiled", str(cprofile)]
                            if cprofile else ["-m", "bench.proc"]),
                          "stack", str(data_dir), str(fed_path)],
                ready=True, timeout=180)
            conn = load_connection(data_dir)
            admin = await broker_dial(conn, "bench-admin")
            watcher = Watcher()
            await admin.subscribe("orcon.deliver.>", cb=watcher.on_msg,
                                  pending_msgs_limit=10**6, pending_bytes_limit=2**30)
            live = Live(conn, admin, await local_client(conn, SENDER), watcher)
            live.others["stack"] = stack.pid

            cpu0 = proc_status(stack.pid).get("cpu_s", 0.0)
            e2e = await audit_end_to_end(admin, events)
            e2e["sequencer_cpu_us_per_entry"] = (
                (proc_status(stack.pid).get("cpu_s", 0.0) - cpu0) / e2e["entries"] * 1e6)
            out["audit_e2e"] = e2e
            out["paced"] = [await paced_appends(admin, stack.pid, rate) for rate in paced]

            r = focal[0]
            warm = preseal(live.sender, report_1k(), [r], 100)
            loads = [preseal(live.sender, report_1k(), [r], n) for _ in range(rounds)]
            js = admin.jetstream()
            b1 = await start_broker(children, data_dir, js, "broker-1", 1)
            await drain(live, [b1], warm, r, 60)
            if spy is not None:
                spy.mkdir(parents=True, exist_ok=True)
                binary = os.environ.get("PY_SPY") or shutil.which("py-spy") or "py-spy"
                spy_proc = await asyncio.create_subprocess_exec(
                    binary, "record", "--pid", str(stack.pid), "--rate", "1000",
                    "--format", "raw", "--output", str(spy / "stack.txt"), "--nonblocking",
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                await asyncio.sleep(1.0)
            elif syscalls is not None:  # counts only: the tracer's own cost skews the CPU
                spy_proc = await asyncio.create_subprocess_exec(
                    "strace", "-c", "-p", str(stack.pid), "-o", str(syscalls),
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                await asyncio.sleep(1.0)
            if cprofile:
                os.kill(stack.pid, signal.SIGUSR1)
            drains = [await drain(live, [b1], load, r, 300) for load in loads]
            if cprofile:
                os.kill(stack.pid, signal.SIGUSR1)  # stops the profile and writes it
                await asyncio.sleep(1.0)
            out["drains"] = drains
            out["sequencer_cpu_us_per_msg"] = statistics.median(
                d["stack_cpu_us_per_msg"] for d in drains)
            out["broker_cpu_us_per_msg"] = statistics.median(d["cpu_us_per_msg"] for d in drains)
            return out
        finally:
            if spy_proc is not None and spy_proc.returncode is None:
                spy_proc.send_signal(2)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(spy_proc.wait(), 30)
            if live is not None:
                await live.close()
            if admin is not None:
                with contextlib.suppress(Exception):
                    await admin.close()
            await children.stop_all()


async def paced_appends(admin: NATS, stack_pid: int, rate: float,
                        n: int = 6000) -> dict[str, float]:
    """`n` messages of two broker-like events (submitted + delivered, the details a
    routed report carries) published to AUDITIN at `rate` msg/s (0: as fast as
    acknowledgments allow), no broker running; the stack's CPU per message until the
    sequencer appended the last event. How the sequencer's cost depends on how its
    input arrives: in bulk, or one event at a time as a steady load hands it over."""
    from datetime import UTC, datetime

    from broker.audit.events import AuditEvent
    from broker.audit.sequencer import encode_events, event_with_id
    from schemas.events import EventType
    from transport import subjects as s
    from transport.jspub import AckPublisher

    js = admin.jetstream()
    pub = AckPublisher(admin)
    await pub.start()
    tag, now = secrets.token_hex(4), datetime.now(UTC)
    details = {"kind": "report", "category": "c", "level": "RESTRICTED",
               "origin_country": "FR", "recipient_country": "AF",
               "purposes": "analysis,investigation", "no_evidential_use": "true",
               "expires_at": "2027-01-01T00:00:00+00:00"}
    msgs = [encode_events([event_with_id(AuditEvent(
        type=t, at=now, broker="broker-1", actor=SENDER, counterpart="AF-FP",
        message_id=f"{i:026d}", header_hash="ab" * 32, details=details), f"{tag}:{i}:{t}")
        for t in (EventType.SUBMITTED, EventType.DELIVERED)]) for i in range(n)]
    base = (await js.stream_info(s.AUDIT_STREAM)).state.last_seq or 0
    cpu0, t0 = proc_status(stack_pid).get("cpu_s", 0.0), time.perf_counter()
    window: list[asyncio.Future[None]] = []
    for i, m in enumerate(msgs):
        if rate:
            ahead = t0 + i / rate - time.perf_counter()
            if ahead > 0.002:
                await asyncio.sleep(ahead)
        window.append(await pub.publish(s.AUDIT_IN_SUBJECT, m, f"{tag}:{i}"))
        if len(window) >= 256:
            await pub.wait(window)
            window = []
    await pub.wait(window)
    while (await js.stream_info(s.AUDIT_STREAM)).state.last_seq < base + 2 * n:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - t0
    pub.close()
    return {"rate": rate, "per_s": n / elapsed,
            "stack_cpu_us_per_msg": (proc_status(stack_pid).get("cpu_s", 0.0) - cpu0) / n * 1e6}


def _cprofiled(out: Path, argv: list[str]) -> int:
    """`bench.proc` under cProfile timed by CPU, not wall, time (the machine is shared):
    SIGUSR1 starts the profile, the next SIGUSR1 stops it and writes `out`."""
    import cProfile

    from bench.proc import main as proc_main

    prof, on = cProfile.Profile(time.process_time), [False]

    def toggle(*_: object) -> None:
        if on[0]:
            prof.disable()
            prof.dump_stats(out)
        else:
            prof.enable()
        on[0] = not on[0]

    signal.signal(signal.SIGUSR1, toggle)
    return proc_main(argv)


def main() -> None:
    if sys.argv[1:2] == ["--cprofiled"]:
        sys.exit(_cprofiled(Path(sys.argv[2]), sys.argv[3:]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=2000, help="messages per drain")
    ap.add_argument("--events", type=int, default=20_000, help="audit events end to end")
    ap.add_argument("--federation", type=int, default=8, help="focal points")
    ap.add_argument("--py-spy", type=Path, default=None, dest="spy")
    ap.add_argument("--strace", type=Path, default=None, help="syscall counts to this file")
    ap.add_argument("--cprofile", type=Path, default=None,
                    help="the stack under cProfile (CPU time) during the drains, to this file")
    ap.add_argument("--paced", type=str, default="",
                    help="comma-separated AUDITIN rates (msg/s, 0 = unpaced) to measure too")
    a = ap.parse_args()
    rates = [float(r) for r in a.paced.split(",") if r.strip()]
    out = asyncio.run(measure(a.rounds, a.n, a.events, a.federation, a.spy, a.strace,
                              a.cprofile, rates))
    e2e = out["audit_e2e"]
    print(f"audit appends e2e           {e2e['appends_per_s']:10,.0f} /s   "
          f"stack CPU {e2e['sequencer_cpu_us_per_entry']:6.1f} µs/entry")
    for p in out["paced"]:
        print(f"paced {p['rate'] or 'unpaced':>8} msg/s  {p['per_s']:8,.0f} msg/s   "
              f"stack {p['stack_cpu_us_per_msg']:6.1f} µs/msg (2 events)")
    for d in out["drains"]:
        print(f"drain {d['per_s']:8,.0f} msg/s   broker {d['cpu_us_per_msg']:6.1f} µs/msg   "
              f"stack {d['stack_cpu_us_per_msg']:6.1f} µs/msg")
    print(f"sequencer_cpu_us_per_msg    {out['sequencer_cpu_us_per_msg']:10.1f} µs (median)")


if __name__ == "__main__":
    main()
