"""`orcon bench --html FILE`: one self-contained page (no script, no CDN, no font) with
the figures side by side with their goals and the latency distribution as an inline
SVG chart, for readers who would rather look than read."""

from __future__ import annotations

import html
import math
from typing import Any

_WIDTH, _HEIGHT, _PAD = 640, 300, 48


def _fmt(v: float) -> str:
    if not isinstance(v, float | int) or math.isnan(v):
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def _bar(value: float, target: float, op: str) -> str:
    """A bar whose length is the figure as a share of its goal (capped at 2 × the
    goal); the goal is the line in the middle."""
    if not value or math.isnan(value) or not target:
        return ""
    share = value / target
    fill = "#2e7d32" if (share >= 1 if op == ">=" else share <= 1) else "#c62828"
    width = max(1.0, min(share, 2.0) / 2 * 200)
    return (f'<svg width="204" height="14" role="img" aria-label="{share:.2f} of the goal">'
            f'<rect x="0" y="2" width="{width:.1f}" height="10" fill="{fill}"/>'
            '<line x1="100" y1="0" x2="100" y2="14" stroke="#222" stroke-width="1.5"/></svg>')


def _chart(series: dict[str, list[float]]) -> str:
    """Latency (ms, log scale) against percentile, one line per offered rate."""
    values = [v for vs in series.values() for v in vs if v > 0]
    if not values:
        return "<p>no latency samples</p>"
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    if hi <= lo:
        hi = lo * 10
    w, h = _WIDTH - 2 * _PAD, _HEIGHT - 2 * _PAD

    def x(q: float) -> float:
        return _PAD + q / 100 * w

    def y(ms: float) -> float:
        ms = max(ms, lo)
        return _PAD + h - (math.log10(ms) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * h

    parts = [f'<svg viewBox="0 0 {_WIDTH} {_HEIGHT}" width="{_WIDTH}" height="{_HEIGHT}" '
             'role="img" aria-label="latency distribution" font-size="11" '
             'font-family="sans-serif">']
    decade = lo
    while decade <= hi * 1.0001:
        parts.append(f'<line x1="{_PAD}" x2="{_PAD + w}" y1="{y(decade):.1f}" '
                     f'y2="{y(decade):.1f}" stroke="#ddd"/>'
                     f'<text x="{_PAD - 6}" y="{y(decade) + 4:.1f}" text-anchor="end">'
                     f'{_fmt(decade)} ms</text>')
        decade *= 10
    for q in range(0, 101, 10):
        parts.append(f'<text x="{x(q):.1f}" y="{_PAD + h + 16}" text-anchor="middle">p{q}</text>')
    goal_y = y(10.0)
    if lo <= 10.0 <= hi:
        parts.append(f'<line x1="{_PAD}" x2="{_PAD + w}" y1="{goal_y:.1f}" y2="{goal_y:.1f}" '
                     'stroke="#c62828" stroke-dasharray="4 3"/>'
                     f'<text x="{_PAD + w}" y="{goal_y - 4:.1f}" text-anchor="end" '
                     'fill="#c62828">goal: p99 ≤ 10 ms at 1,000 msg/s</text>')
    colours = ["#1565c0", "#ef6c00", "#6a1b9a", "#2e7d32"]
    for i, (name, vs) in enumerate(series.items()):
        step = 100 / max(1, len(vs) - 1)
        points = " ".join(f"{x(k * step):.1f},{y(v):.1f}" for k, v in enumerate(vs))
        colour = colours[i % len(colours)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{points}"/>'
                     f'<text x="{_PAD + 8}" y="{_PAD + 14 + 14 * i}" fill="{colour}">'
                     f'{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(doc: dict[str, Any]) -> str:
    goals: dict[str, Any] = doc["goals"]
    rows = []
    for key, g in goals.items():
        value = float(doc[key])
        mark = "met" if g["met"] else "not met"
        rows.append(
            f"<tr><td>{html.escape(g['what'])}<br><code>{html.escape(key)}</code></td>"
            f"<td class=n>{_fmt(value)}</td><td class=n>{html.escape(g['op'])} "
            f"{_fmt(float(g['target']))}</td><td class={mark.replace(' ', '-')}>{mark}</td>"
            f"<td>{_bar(value, float(g['target']), g['op'])}</td></tr>")
    figures = []
    for key in sorted(k for k, v in doc.items() if isinstance(v, float) and k not in goals):
        figures.append(f"<tr><td><code>{html.escape(key)}</code></td>"
                       f"<td class=n>{_fmt(float(doc[key]))}</td></tr>")
    d = doc["details"]
    series = {f"at {name.rsplit('_', 1)[1]} msg/s offered": d[name]["percentiles_ms"]
              for name in ("latency_at_100", "latency_at_1000")
              if "percentiles_ms" in d.get(name, {})}
    m = doc["machine"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>orcon bench ({html.escape(doc['mode'])})</title>
<style>
body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}
table{{border-collapse:collapse;margin:1rem 0}} td,th{{padding:.3rem .6rem;
border-bottom:1px solid #ddd;vertical-align:middle;text-align:left}}
.n{{text-align:right;font-variant-numeric:tabular-nums}}
.met{{color:#2e7d32;font-weight:bold}} .not-met{{color:#c62828;font-weight:bold}}
code{{font-size:.85em;color:#555}}
</style></head><body>
<h1>orcon bench</h1>
<p>{html.escape(doc['mode'])} mode, {m['cpus']} CPUs, Python {html.escape(m['python'])},
load average {m['loadavg_1m']:.1f} at the end, {doc['duration_s']:.0f} s, started
{html.escape(doc['started_at'])}. Every process (load generator, recipients, nats-server,
the audit sequencer, the brokers) shares this machine: see docs/bench.md for what each
figure measures.</p>
<h2>Goals</h2>
<p>The bar is the figure as a share of its goal; the line is the goal (green: met).</p>
<table><tr><th>figure</th><th>now</th><th>goal</th><th></th><th></th></tr>
{''.join(rows)}</table>
<h2>Latency, publish → decrypted by the recipient</h2>
<p>From each message's scheduled send time, by percentile (log scale).</p>
{_chart(series)}
<h2>Every figure</h2>
<table>{''.join(figures)}</table>
</body></html>
"""
