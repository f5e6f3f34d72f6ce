"""`orcon bench`: throughput, latency, fan-out and peers measured in one run.

Like `nats bench` or `redis-benchmark`, it starts its own embedded nats-server and
broker processes in a temporary directory, runs every measurement, stops everything
and reports. `--json` prints one document whose shape is documented in docs/bench.md
and kept stable (`schema` is bumped on any incompatible change).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

SCHEMA = 1

# Goals from issue 9: targets to approach, reported, never enforced.
GOALS: dict[str, tuple[str, float, str]] = {
    # key: (comparison, target, what)
    "secure_vs_relay": (">=", 0.25, "secure routing vs the bare relay"),
    "p99_ms_at_1000": ("<=", 10.0, "p99 latency at 1,000 msg/s"),
    # Issue 19 tightened this one from 100 ms.
    "fanout_195_ms": ("<=", 5.0, "fan-out to 195 focal points"),
    "policy_decisions_per_s": (">=", 50_000.0, "policy decisions per second"),
    "seal10_vs_gpg": (">=", 20.0, "sealing to 10 recipients vs GnuPG"),
    # Issue 13: one agency's flood must not hold up another agency's messages.
    "flood_victim_vs_idle": ("<=", 2.0, "an honest agency's p99 during a flood vs idle"),
    # Issue 19: the secure hop against the JetStream limit.
    "secure_vs_js_relay": (">=", 0.5, "secure routing vs the bare JetStream relay"),
    "broker_cpu_us_per_msg": ("<=", 120.0, "broker CPU per routed message"),
    "sequencer_cpu_us_per_msg": ("<=", 40.0, "audit sequencer CPU per routed message"),
    "open_us": ("<=", 90.0, "recipient verify + open, 1 KB"),
    "schema_decodes_per_s": (">=", 100_000.0, "decode + validate, one core"),
    "audit_appends_e2e_per_s": (">=", 25_000.0, "audit appends through NATS, end to end"),
}

# The top-level numbers scripts track (docs/bench.md); every one is a positive float.
KEYS = (
    "nats_pubsub_msgs_per_s", "relay_msgs_per_s", "relay_js_msgs_per_s", "secure_routed_per_s",
    "secure_msgs_per_s", "secure_vs_relay", "p50_ms_at_100", "p95_ms_at_100", "p99_ms_at_100",
    "p50_ms_at_1000", "p95_ms_at_1000", "p99_ms_at_1000", "fanout_195_ms", "policy_decisions_per_s",
    "policy_decisions_per_s_cached", "audit_appends_per_s", "schema_decodes_per_s",
    "seal10_ms", "gpg10_ms", "seal10_vs_gpg", "secure_routed_per_s_2brokers",
    "secure_routed_per_s_1broker_mean", "brokers2_vs_1", "broker_cpu_us_per_msg", "broker_rss_mb",
    "flood_idle_p99_ms", "flood_victim_p99_ms", "flood_victim_vs_idle",
    "secure_vs_js_relay", "sequencer_cpu_us_per_msg", "open_us", "audit_appends_e2e_per_s",
)


def _progress(enabled: bool) -> Any:
    err = Console(stderr=True)
    start = time.perf_counter()

    def say(text: str) -> None:
        if enabled:
            err.print(f"[dim]{time.perf_counter() - start:6.1f} s[/]  {text}")

    return say


def run(mode: str, progress: Any) -> dict[str, Any]:
    """Every measurement, in one process tree; returns the JSON document."""
    from bench import audit_perf, keys_perf, policy_perf
    from bench import decode as bench_schemas
    from bench.load import PLANS, run_live
    from broker.hosting import eventloop

    plan = PLANS[mode]
    load_at_start = os.getloadavg()[0]
    started = datetime.now(UTC)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="orcon-bench-") as tmp:
        live = asyncio.run(run_live(plan, Path(tmp), progress))

    # CPU-only figures run after every child has stopped, so nothing competes with them.
    progress("seal / open per suite")
    seal = keys_perf.measure(seconds=plan.micro_s)
    progress("GnuPG: sign + encrypt to 10 recipients")
    gpg10 = keys_perf.measure_gpg(10, seconds=plan.gpg_s)
    progress("policy decisions")
    policy = policy_perf.measure(seconds=plan.micro_s)
    progress(f"audit log ({plan.audit_entries:,} entries)")
    audit = audit_perf.measure(plan.audit_entries, proofs=min(2_000, plan.audit_entries))
    progress("schema decode + validate")
    schema = bench_schemas.measure(seconds=plan.micro_s)

    lat_lo, lat_hi = live["latency_100"], live["latency_1000"]
    b1 = live["broker_1_end"]
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "mode": mode,
        "nats_pubsub_msgs_per_s": live["nats_pubsub_msgs_per_s"],
        "relay_msgs_per_s": live["relay_msgs_per_s"],
        "relay_js_msgs_per_s": live["relay_js_msgs_per_s"],
        "secure_routed_per_s": live["secure_routed_per_s"],
        "secure_msgs_per_s": live["secure_msgs_per_s"],
        "p50_ms_at_100": lat_lo["p50_ms"],
        "p95_ms_at_100": lat_lo["p95_ms"],
        "p99_ms_at_100": lat_lo["p99_ms"],
        "p50_ms_at_1000": lat_hi["p50_ms"],
        "p95_ms_at_1000": lat_hi["p95_ms"],
        "p99_ms_at_1000": lat_hi["p99_ms"],
        "fanout_195_ms": live["fanout"]["median_ms"],
        "policy_decisions_per_s": policy["decisions_per_s"],
        "policy_decisions_per_s_cached": policy["decisions_per_s_cached"],
        "audit_appends_per_s": audit["log_appends_per_s"],
        "schema_decodes_per_s": schema["decode_validate_per_s"],
        "seal10_ms": seal["seal_x25519_10_ms"],
        "gpg10_ms": gpg10,
        "secure_routed_per_s_2brokers": live["secure_routed_per_s_2brokers"],
        "secure_routed_per_s_1broker_mean": live["secure_routed_per_s_1broker_mean"],
        "broker_cpu_us_per_msg": live["broker_cpu_us_per_msg"],
        "broker_rss_mb": b1["VmRSS"],
        "flood_idle_p99_ms": live["flood"]["idle_p99_ms"],
        "flood_victim_p99_ms": live["flood"]["victim_p99_ms"],
        # The stack process runs the audit sequencer (nats-server is its own process).
        "sequencer_cpu_us_per_msg": b1_drain_seq(live),
        "open_us": seal["open_x25519_ms"] * 1e3,
        "audit_appends_e2e_per_s": live["audit_e2e"]["appends_per_s"],
    }
    doc["secure_vs_relay"] = doc["secure_msgs_per_s"] / doc["relay_msgs_per_s"]
    doc["secure_vs_js_relay"] = doc["secure_routed_per_s"] / doc["relay_js_msgs_per_s"]
    doc["seal10_vs_gpg"] = doc["gpg10_ms"] / doc["seal10_ms"]
    doc["flood_victim_vs_idle"] = doc["flood_victim_p99_ms"] / doc["flood_idle_p99_ms"]
    doc["brokers2_vs_1"] = (doc["secure_routed_per_s_2brokers"]
                            / doc["secure_routed_per_s_1broker_mean"])
    doc["goals"] = {
        key: {"target": target, "op": op, "met": _met(doc[key], op, target), "what": what}
        for key, (op, target, what) in GOALS.items()
    }
    doc["details"] = {
        "latency_at_100": lat_lo,
        "latency_at_1000": lat_hi,
        "fanout": {**live["fanout"], "recipients": float(live["counts"]["focal_points"]),
                   "sender_seal_ms": live["fanout_seal_ms"]},
        "whole_path": {"open_per_s_in_recipient": live["open_per_s_in_recipient"],
                       "seal1_in_load_ms": live["seal1_in_load_ms"]},
        "brokers": {"broker_1": b1, "broker_1_before_scaling": live["broker_1"],
                    "broker_2": live["broker_2"],
                    "routed_per_s_1broker_runs": live["secure_routed_per_s_1broker_runs"],
                    "drain_1broker": live["drain_1broker"],
                    "drain_2brokers": live["drain_2brokers"],
                    "cpu_us_per_msg_2brokers": live["broker_cpu_us_per_msg_2brokers"]},
        "flood": live["flood"],
        "seal_open": seal,
        "gpg": {"sign_encrypt_10_ms": gpg10},
        "policy": policy,
        "audit": audit,
        "audit_end_to_end": live["audit_e2e"],
        "schemas": schema,
        "counts": live["counts"],
    }
    doc["machine"] = {
        "cpus": os.cpu_count() or 0,
        "loadavg_1m": os.getloadavg()[0],
        "loadavg_at_start": load_at_start,
        "uvloop": eventloop.uvloop_enabled(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    doc["started_at"] = started.isoformat()
    doc["duration_s"] = time.perf_counter() - t_start
    return doc


def run_flood(mode: str, progress: Any) -> dict[str, Any]:
    """The fairness phase alone (`--flood-only`): the flood figures and their ratio."""
    from bench.load import PLANS, run_live

    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="orcon-bench-") as tmp:
        flood = asyncio.run(run_live(PLANS[mode], Path(tmp), progress, flood_only=True))["flood"]
    return {"flood_idle_p99_ms": flood["idle_p99_ms"],
            "flood_victim_p99_ms": flood["victim_p99_ms"],
            "flood_victim_vs_idle": flood["victim_p99_ms"] / flood["idle_p99_ms"],
            "flood": flood, "mode": mode,
            "loadavg_at_start": load_at_start, "loadavg_1m": os.getloadavg()[0]}


def b1_drain_seq(live: dict[str, Any]) -> float:
    """The audit sequencer's CPU per routed message in the one-broker drain."""
    return float(live["drain_1broker"].get("stack_cpu_us_per_msg", float("nan")))


def _met(value: float, op: str, target: float) -> bool:
    return value >= target if op == ">=" else value <= target


def _fmt(v: float, unit: str = "") -> str:
    if math.isnan(v):
        return "n/a"
    if abs(v) >= 100:
        text = f"{v:,.0f}"
    elif abs(v) >= 10:
        text = f"{v:.1f}"
    else:
        text = f"{v:.2f}"
    return f"{text} {unit}".rstrip()


def render(doc: dict[str, Any], console: Console) -> None:
    from bench.load import FLOOD_RATE

    goals = doc["goals"]
    d = doc["details"]
    table = Table(title=f"orcon bench ({doc['mode']}, {doc['machine']['cpus']} CPUs, "
                        f"{doc['duration_s']:.0f} s)", show_lines=False)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("ratio / goal")

    def goal(key: str) -> str:
        if key not in goals:
            return ""
        g = goals[key]
        mark = "[green]met[/]" if g["met"] else "[red]not met[/]"
        return f"goal {g['op']} {_fmt(g['target'])}: {mark}"

    def row(label: str, value: str, note: str = "") -> None:
        table.add_row(label, value, note)

    table.add_section()
    row("[bold]1. limits[/]", "")
    row("nats-py publish -> subscribe (1 KB)", _fmt(doc["nats_pubsub_msgs_per_s"], "msg/s"))
    row("bare Python relay (1 hop, 1 KB)", _fmt(doc["relay_msgs_per_s"], "msg/s"))
    row("bare Python relay on JetStream (fetch, publish + ack)",
        _fmt(doc["relay_js_msgs_per_s"], "msg/s"),
        f"the broker reaches x{doc['secure_vs_js_relay']:.2f}; {goal('secure_vs_js_relay')}")
    table.add_section()
    row("[bold]2. secure routing, 1 KB report, 1 recipient[/]", "")
    row("whole path, submit -> opened", _fmt(doc["secure_msgs_per_s"], "msg/s"),
        f"x{doc['secure_vs_relay']:.3f} of relay; {goal('secure_vs_relay')}")
    row("broker capacity (backlog, 1 broker)", _fmt(doc["secure_routed_per_s"], "msg/s"),
        f"{_fmt(doc['broker_cpu_us_per_msg'], 'µs')} broker CPU per message; "
        f"{goal('broker_cpu_us_per_msg')}")
    row("audit sequencer CPU per routed message", _fmt(doc["sequencer_cpu_us_per_msg"], "µs"),
        goal("sequencer_cpu_us_per_msg"))
    row("recipient open (verify + decrypt + decode)",
        _fmt(d["whole_path"]["open_per_s_in_recipient"], "msg/s"),
        f"verify + open alone {_fmt(doc['open_us'], 'µs')}; {goal('open_us')}")
    table.add_section()
    row("[bold]3. latency, publish -> decrypted[/]", "")
    for rate in (100, 1000):
        lat = d[f"latency_at_{rate}"]
        row(f"at {rate:,} msg/s offered ({_fmt(lat['delivered_per_s'])}/s delivered)",
            f"{_fmt(lat['p50_ms'])} / {_fmt(lat['p95_ms'])} / {_fmt(lat['p99_ms'])} ms",
            "p50 / p95 / p99" + (f"; {goal('p99_ms_at_1000')}" if rate == 1000 else ""))
    table.add_section()
    fan = d["fanout"]
    row(f"[bold]4. fan-out[/] to {fan['recipients']:.0f} focal points, last delivery",
        _fmt(doc["fanout_195_ms"], "ms"),
        f"median of {fan['runs']:.0f}, max {_fmt(fan['max_ms'], 'ms')}; "
        f"{goal('fanout_195_ms')}")
    row("  sender: seal + sign to all of them", _fmt(fan["sender_seal_ms"], "ms"))
    table.add_section()
    fl = d["flood"]
    row(f"[bold]4b. fairness[/]: honest p99 at {FLOOD_RATE} msg/s, idle / during a flood",
        f"{_fmt(doc['flood_idle_p99_ms'])} / {_fmt(doc['flood_victim_p99_ms'])} ms",
        f"x{doc['flood_victim_vs_idle']:.2f}; {goal('flood_victim_vs_idle')}")
    row(f"  flood: {fl['flood_submissions']:,.0f} junk submissions from another agency",
        f"{_fmt(fl['flood_drained_s'], 's')} to drain",
        f"{fl['junk_waiting_at_start']:,.0f} queued when the honest agency started")
    table.add_section()
    row("[bold]5. components (one core)[/]", "")
    row("policy decisions (Cedar, uncached)", _fmt(doc["policy_decisions_per_s"], "/s"),
        goal("policy_decisions_per_s"))
    row("policy decisions (decision cache hit)",
        _fmt(doc["policy_decisions_per_s_cached"], "/s"))
    row("audit appends (seal + append + Merkle)", _fmt(doc["audit_appends_per_s"], "/s"),
        f"{d['audit']['entries']:,.0f} entries")
    row("audit appends through NATS, end to end", _fmt(doc["audit_appends_e2e_per_s"], "/s"),
        f"{d['audit_end_to_end']['entries']:,.0f} events; {goal('audit_appends_e2e_per_s')}")
    row("schema decode + validate (2 KB report)", _fmt(doc["schema_decodes_per_s"], "/s"),
        goal("schema_decodes_per_s"))
    seal = d["seal_open"]
    for suite in ("x25519", "mlkem768x25519"):
        row(f"seal {suite} to 1 / 10 / 195",
            f"{_fmt(seal[f'seal_{suite}_1_ms'])} / {_fmt(seal[f'seal_{suite}_10_ms'])} / "
            f"{_fmt(seal[f'seal_{suite}_195_ms'])} ms")
        row(f"open {suite}", _fmt(seal[f"open_{suite}_ms"], "ms"))
    table.add_section()
    row("[bold]6. peer[/]: GnuPG sign + encrypt to 10", _fmt(doc["gpg10_ms"], "ms"),
        f"orcon seal x{doc['seal10_vs_gpg']:.0f} faster; {goal('seal10_vs_gpg')}")
    table.add_section()
    row("[bold]7. scaling[/]: 2 broker processes", _fmt(doc["secure_routed_per_s_2brokers"],
                                                         "msg/s"),
        f"x{doc['brokers2_vs_1']:.2f} of one broker "
        f"({_fmt(doc['secure_routed_per_s_1broker_mean'])} msg/s, mean of a drain before "
        "and after)")
    one = d["brokers"]["drain_1broker"]
    row("  CPU per message, 1 broker: broker / nats-server / audit sequencer",
        f"{_fmt(one['cpu_us_per_msg'])} / {_fmt(one.get('nats_server_cpu_us_per_msg', 0))} / "
        f"{_fmt(one.get('stack_cpu_us_per_msg', 0))} µs",
        f"{doc['machine']['cpus']} CPUs for all of them")
    table.add_section()
    row("[bold]8. broker resident memory[/] after the run", _fmt(doc["broker_rss_mb"], "MiB"),
        f"peak {_fmt(d['brokers']['broker_1'].get('VmHWM', float('nan')), 'MiB')}")
    console.print(table)
    console.print(
        "[dim]Every figure comes from this machine at this moment: the load generator, the "
        "recipients, nats-server, the audit sequencer and the brokers share its "
        f"{doc['machine']['cpus']} CPUs (load average {doc['machine']['loadavg_1m']:.1f} "
        "at the end). Sealing happens before timing; see docs/bench.md for what each "
        "figure measures.[/]"
    )


def bench(
    as_json: bool = typer.Option(False, "--json", help="print one JSON document"),
    quick: bool = typer.Option(False, "--quick", help="a short run for CI smoke use"),
    smoke: bool = typer.Option(False, "--smoke", hidden=True,
                               help="tiny counts: proves every phase works (tests)"),
    html_file: str | None = typer.Option(
        None, "--html", help="also write a self-contained HTML report (goals, latency chart)"),
    flood_only: bool = typer.Option(
        False, "--flood-only",
        help="only the fairness figures (one broker, idle and during a flood); JSON"),
) -> None:
    """Measure orcon on this machine (starts and stops its own NATS and brokers)."""
    from bench.load import BenchError
    from clients.cli.logs import configure

    configure(level="WARNING")
    mode = "smoke" if smoke else "quick" if quick else "full"
    err = Console(stderr=True)
    if flood_only:
        try:
            sys.stdout.write(json.dumps(run_flood(mode, _progress(sys.stderr.isatty())),
                                        indent=2) + "\n")
        except BenchError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        return
    try:
        doc = run(mode, _progress(sys.stderr.isatty() or not as_json))
    except BenchError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]; every process the bench started was stopped")
        raise typer.Exit(130) from None
    if html_file is not None:
        from bench.html_report import render_html

        Path(html_file).write_text(render_html(doc), encoding="utf-8")
    if as_json:
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    else:
        render(doc, Console() if sys.stdout.isatty() else Console(width=120))


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command()(bench)
