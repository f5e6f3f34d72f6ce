"""The auditor's HTML report: one self-contained page (inline CSS, JS and SVG).

Self-contained because auditors open it on air-gapped or locked-down machines and
because a report that fetched anything would leak what is being audited; the page's
Content-Security-Policy forbids every network load so a mistake cannot slip through.
Every string from the log is HTML-escaped: agency ids, reasons and details come from
parties under audit and must not be able to script the auditor's browser.

`analyse` computes the findings (tested directly); `render_report` lays them out.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from broker.audit.events import AuditEvent, decode_record
from broker.audit.store import Bundle
from broker.audit.verify import VerifyReport
from policies.acts import ACT_KINDS
from schemas.events import EventType

E = EventType


@dataclass(frozen=True, slots=True)
class Delivery:
    message_id: str
    sender: str
    recipient: str
    origin: str
    destination: str
    at: datetime
    details: dict[str, str]


@dataclass(frozen=True, slots=True)
class Consent:
    message_id: str
    requester: str
    originator: str
    purpose: str
    requested: datetime
    outcome: str  # granted / refused / pending
    decided: datetime | None

    @property
    def time_to_decide(self) -> timedelta | None:
        return None if self.decided is None else self.decided - self.requested


@dataclass(frozen=True, slots=True)
class Change:
    """An originator's amendment or withdrawal, and each holder's compliance: when its
    signed receipt (amend_applied / purged) was logged, None while it has not complied."""

    change_id: str
    kind: str  # amendment / withdrawal
    message_id: str
    originator: str
    at: datetime
    holders: dict[str, datetime | None]


# The restriction keys an amendment replaces (policies.acts.amended_details).
_AMENDABLE = ("purposes", "expires_at", "no_evidential_use", "no_onward_dissemination",
              "consult_before_action")


@dataclass(frozen=True, slots=True)
class Violation:
    event: AuditEvent
    what: str


@dataclass(slots=True)
class Analysis:
    now: datetime
    events: list[AuditEvent]
    undecodable: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    flows: Counter[tuple[str, str]] = field(default_factory=Counter)
    refusals_by_rule: Counter[str] = field(default_factory=Counter)
    refusals: list[AuditEvent] = field(default_factory=list)
    unacknowledged: list[Delivery] = field(default_factory=list)
    # Life-cycle acts (acknowledgments, uses, consents, receipts...) also travel as
    # messages and are logged `delivered`; they are counted here by kind, apart from
    # the information deliveries above (an act awaits no acknowledgment).
    acts_delivered: Counter[str] = field(default_factory=Counter)
    consents: list[Consent] = field(default_factory=list)
    forwards: list[AuditEvent] = field(default_factory=list)
    uses: list[AuditEvent] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    expired_not_purged: list[tuple[str, str, datetime]] = field(default_factory=list)
    by_type: Counter[str] = field(default_factory=Counter)


def decode_events(bundle: Bundle) -> tuple[list[AuditEvent], list[int]]:
    events: list[AuditEvent] = []
    bad: list[int] = []
    for i, entry in enumerate(bundle.entries):
        try:
            events.append(decode_record(entry).event)
        except (msgspec.DecodeError, msgspec.ValidationError):
            bad.append(i)
    return events, bad


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def _true(details: dict[str, str], key: str) -> bool:
    return details.get(key, "").lower() == "true"


def analyse(events: list[AuditEvent], now: datetime | None = None) -> Analysis:
    """`now` decides what counts as expired; default: the latest event, so the same
    log always yields the same report."""
    events = sorted(events, key=lambda e: e.at)
    now = now or (events[-1].at if events else datetime.now().astimezone())
    a = Analysis(now=now, events=events)
    acked: set[tuple[str, str]] = set()
    purged: set[tuple[str, str]] = set()
    flags: dict[tuple[str, str], dict[str, str]] = {}
    for e in events:
        a.by_type[e.type.value] += 1
        mid = e.message_id or ""
        if e.type is E.ACKNOWLEDGED:
            acked.add((mid, e.actor))
        elif e.type is E.PURGED:
            purged.add((mid, e.actor))
        elif e.type is E.DELIVERED and e.counterpart and e.details.get("kind") in ACT_KINDS:
            a.acts_delivered[e.details["kind"]] += 1
        elif e.type is E.DELIVERED and e.counterpart:
            d = Delivery(mid, e.actor, e.counterpart, e.details.get("origin_country", "??"),
                         e.details.get("recipient_country", "??"), e.at, e.details)
            a.deliveries.append(d)
            a.flows[(d.origin, d.destination)] += 1
            flags[(mid, e.counterpart)] = e.details
        elif e.type is E.REFUSED:
            a.refusals.append(e)
            a.refusals_by_rule[e.rule or "(no rule)"] += 1
        elif e.type in (E.FORWARDED, E.FORWARD_REFUSED):
            a.forwards.append(e)
            if e.type is E.FORWARDED and e.counterpart:
                flags[(mid, e.counterpart)] = e.details
        elif e.type in (E.USE_DECLARED, E.USE_REFUSED):
            a.uses.append(e)

    a.unacknowledged = [d for d in a.deliveries if (d.message_id, d.recipient) not in acked]

    # Amendments and withdrawals: who complied (signed receipt logged) and who has not.
    # An amendment's restrictions replace the original's for what follows it.
    amendments: dict[str, list[tuple[datetime, dict[str, str]]]] = defaultdict(list)
    for e in events:
        if e.type not in (E.AMENDED, E.WITHDRAWN) or not e.details.get("change"):
            continue
        mid, change = e.message_id or "", e.details["change"]
        holders = [h for h in e.details.get("holders", "").split(",") if h]
        complied: dict[str, datetime | None] = {}
        for h in holders:
            complied[h] = next(
                (x.at for x in events if x.actor == h and (x.message_id or "") == mid
                 and ((e.type is E.AMENDED and x.type is E.AMEND_APPLIED
                       and x.details.get("change") == change)
                      or (e.type is E.WITHDRAWN and x.type is E.PURGED
                          and (x.details.get("change") == change or x.at >= e.at)))),
                None)
        a.changes.append(Change(change, "amendment" if e.type is E.AMENDED else "withdrawal",
                                mid, e.actor, e.at, complied))
        if e.type is E.AMENDED:
            amendments[mid].append((e.at, {k: e.details[k] for k in _AMENDABLE
                                           if k in e.details}))
            for h in holders:
                if (mid, h) in flags:
                    flags[(mid, h)] = {**flags[(mid, h)], **amendments[mid][-1][1]}

    def amended(mid: str, at: datetime) -> dict[str, str]:
        out: dict[str, str] = {}
        for t, d in amendments.get(mid, []):
            if t <= at:
                out.update(d)
        return out

    # Reconciliation: a recipient's own signed acknowledgment or use of a message that
    # the log never delivered to it means a broker delivered outside the log.
    received = set(flags)
    for e in events:
        if e.type in (E.ACKNOWLEDGED, E.USE_DECLARED) and (e.message_id or "", e.actor) \
                not in received:
            a.violations.append(Violation(e, "received without a logged delivery "
                                             "(delivered outside the audit log)"))

    # Consent: pair each request with the originator's first decision after it.
    decisions: dict[tuple[str, str], list[AuditEvent]] = defaultdict(list)
    for e in events:
        if e.type in (E.CONSENT_GRANTED, E.CONSENT_REFUSED) and e.counterpart:
            decisions[(e.message_id or "", e.counterpart)].append(e)
    # A consent covers what was asked: a request naming `forward_to` covers that onward
    # transfer only; any other request covers use (evidential or another purpose).
    use_granted: dict[tuple[str, str], datetime] = {}
    forward_granted: dict[tuple[str, str, str], datetime] = {}
    for e in events:
        if e.type is not E.CONSENT_REQUESTED:
            continue
        mid = e.message_id or ""
        dec = next((x for x in decisions[(mid, e.actor)] if x.at >= e.at), None)
        outcome = "pending"
        if dec is not None:
            outcome = "granted" if dec.type is E.CONSENT_GRANTED else "refused"
            if outcome == "granted":
                third = e.details.get("forward_to")
                if third:
                    forward_granted.setdefault((mid, e.actor, third), dec.at)
                else:
                    use_granted.setdefault((mid, e.actor), dec.at)
        a.consents.append(Consent(mid, e.actor, e.counterpart or "?",
                                  e.details.get("purpose", ""), e.at, outcome,
                                  None if dec is None else dec.at))

    for e in a.uses:
        if e.type is not E.USE_DECLARED:
            continue
        mid = e.message_id or ""
        # The use event carries the flags; the delivery's copy covers older emitters.
        f = {**flags.get((mid, e.actor), {}), **e.details, **amended(mid, e.at)}
        consent_at = use_granted.get((mid, e.actor))
        consented = consent_at is not None and consent_at <= e.at
        if _true(f, "evidential") and _true(f, "no_evidential_use") and not consented:
            a.violations.append(Violation(e, "evidential use without the originator's consent"))
        allowed = [p for p in f.get("purposes", "").split(",") if p]
        purpose = f.get("purpose", "")
        if allowed and purpose and purpose not in allowed:
            a.violations.append(
                Violation(e, f"purpose '{purpose}' outside the allowed {', '.join(allowed)}")
            )
        expires = _parse_time(f.get("expires_at"))
        if expires is not None and e.at > expires:
            a.violations.append(Violation(e, "use after the information expired"))
    for e in a.forwards:
        if e.type is not E.FORWARDED:
            continue
        consent_at = forward_granted.get((e.message_id or "", e.actor, e.counterpart or ""))
        if _true(e.details, "no_onward_dissemination") and (
            consent_at is None or consent_at > e.at
        ):
            a.violations.append(Violation(e, "onward dissemination without consent"))

    for (mid, holder), f in flags.items():
        expires = _parse_time(f.get("expires_at"))
        if expires is not None and expires < now and (mid, holder) not in purged:
            a.expired_not_purged.append((mid, holder, expires))
    a.expired_not_purged.sort(key=lambda t: t[2])
    return a


# ---------------------------------------------------------------------------- HTML

def _e(v: object) -> str:
    return html.escape(str(v), quote=True)


def _t(t: datetime | None) -> str:
    return "—" if t is None else t.strftime("%Y-%m-%d %H:%M")


def _dur(d: timedelta | None) -> str:
    if d is None:
        return "—"
    hours = d.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
            "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939")


def _flow_svg(flows: Counter[tuple[str, str]]) -> str:
    """A two-column flow chart (sankey): originator country → recipient country."""
    if not flows:
        return "<p class=muted>No deliveries.</p>"
    total = sum(flows.values())
    left = Counter[str]()
    right = Counter[str]()
    for (o, r), c in flows.items():
        left[o] += c
        right[r] += c
    lnames, rnames = sorted(left), sorted(right)
    gap, height, width = 10, 420, 760
    x0, x1, bar = 120, width - 120, 14
    scale = (height - gap * (max(len(lnames), len(rnames)) - 1)) / total

    def stack(names: list[str], counts: Counter[str]) -> dict[str, float]:
        y, pos = 0.0, {}
        for n in names:
            pos[n] = y
            y += counts[n] * scale + gap
        return pos

    ly, ry = stack(lnames, left), stack(rnames, right)
    lo, ro = dict(ly), dict(ry)  # running offsets inside each node
    colour = {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(lnames)}
    parts = [f'<svg class=flow viewBox="0 0 {width} {height + 20}" role=img '
             f'aria-label="Deliveries by originator and recipient country">']
    xm = (x0 + bar + x1) / 2
    for (o, r), c in sorted(flows.items()):
        t = c * scale
        a, b = lo[o], ro[r]
        lo[o] += t
        ro[r] += t
        xa, xb = x0 + bar, x1
        parts.append(
            f'<path class=band d="M{xa},{a:.1f} C{xm},{a:.1f} {xm},{b:.1f} {xb},{b:.1f} '
            f'L{xb},{b + t:.1f} C{xm},{b + t:.1f} {xm},{a + t:.1f} {xa},{a + t:.1f} Z" '
            f'fill="{colour[o]}"><title>{_e(o)} → {_e(r)}: {c}</title></path>'
        )
    for n in lnames:
        h = left[n] * scale
        parts.append(f'<rect x={x0} y="{ly[n]:.1f}" width={bar} height="{h:.1f}" '
                     f'fill="{colour[n]}"/><text x={x0 - 6} y="{ly[n] + h / 2 + 4:.1f}" '
                     f'text-anchor=end>{_e(n)} ({left[n]})</text>')
    for n in rnames:
        h = right[n] * scale
        parts.append(f'<rect x={x1} y="{ry[n]:.1f}" width={bar} height="{h:.1f}" '
                     f'fill="#555"/><text x={x1 + bar + 6} y="{ry[n] + h / 2 + 4:.1f}">'
                     f'{_e(n)} ({right[n]})</text>')
    parts.append("</svg>")
    return "".join(parts)


def _matrix(flows: Counter[tuple[str, str]]) -> str:
    origins = sorted({o for o, _ in flows})
    dests = sorted({r for _, r in flows})
    peak = max(flows.values(), default=1)
    head = "".join(f"<th>{_e(r)}</th>" for r in dests)
    rows = []
    for o in origins:
        cells = []
        for r in dests:
            c = flows.get((o, r), 0)
            alpha = 0.08 + 0.8 * c / peak if c else 0
            cells.append(f'<td class=num style="background:rgba(31,119,180,{alpha:.2f})">'
                         f'{c or ""}</td>')
        rows.append(f"<tr><th>{_e(o)}</th>{''.join(cells)}</tr>")
    return (f"<table class=matrix><thead><tr><th>from \\ to</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _bars(counts: Counter[str]) -> str:
    if not counts:
        return "<p class=muted>None.</p>"
    peak = max(counts.values())
    rows = "".join(
        f'<div class=barrow><span class=barlabel>{_e(k)}</span>'
        f'<span class=bar style="width:{60 * v / peak:.1f}%"></span>'
        f'<span class=num>{v}</span></div>'
        for k, v in counts.most_common()
    )
    return f"<div class=bars>{rows}</div>"


_GROUPS = {
    "delivered": "#2ca02c", "refused": "#d62728", "consent": "#9467bd",
    "use / forward": "#ff7f0e", "other": "#9e9e9e",
}


def _group(t: EventType) -> str:
    if t is E.DELIVERED:
        return "delivered"
    if t in (E.REFUSED, E.REJECTED, E.FORWARD_REFUSED, E.USE_REFUSED):
        return "refused"
    if t in (E.CONSENT_REQUESTED, E.CONSENT_GRANTED, E.CONSENT_REFUSED):
        return "consent"
    if t in (E.USE_DECLARED, E.FORWARDED):
        return "use / forward"
    return "other"


def _timeline_svg(events: list[AuditEvent]) -> str:
    if not events:
        return "<p class=muted>No events.</p>"
    days: dict[str, Counter[str]] = defaultdict(Counter)
    for e in events:
        days[e.at.strftime("%Y-%m-%d")][_group(e.type)] += 1
    first = events[0].at.date()
    last = events[-1].at.date()
    ndays = (last - first).days + 1
    width, height, pad = 900, 220, 30
    bw = max((width - 2 * pad) / ndays, 1.0)
    peak = max(sum(c.values()) for c in days.values())
    parts = [f'<svg class=timeline viewBox="0 0 {width} {height + 40}" role=img '
             f'aria-label="Events per day">']
    for i in range(ndays):
        day = (first + timedelta(days=i)).isoformat()
        c = days.get(day)
        if not c:
            continue
        y = float(height)
        for g, colour in _GROUPS.items():
            v = c.get(g, 0)
            if not v:
                continue
            h = (height - 10) * v / peak
            y -= h
            parts.append(f'<rect x="{pad + i * bw:.1f}" y="{y:.1f}" width="{bw * 0.85:.1f}" '
                         f'height="{h:.1f}" fill="{colour}"><title>{day} {g}: {v}</title></rect>')
        if i % max(ndays // 8, 1) == 0:
            parts.append(f'<text x="{pad + i * bw:.1f}" y="{height + 16}">{day}</text>')
    lx = pad
    for g, colour in _GROUPS.items():
        parts.append(f'<rect x={lx} y="{height + 26}" width=10 height=10 fill="{colour}"/>'
                     f'<text x={lx + 14} y="{height + 35}">{_e(g)}</text>')
        lx += 130
    parts.append("</svg>")
    return "".join(parts)


def _table(headers: list[str], rows: list[list[str]], cls: str = "", limit: int = 500) -> str:
    if not rows:
        return "<p class=muted>None.</p>"
    more = ""
    if len(rows) > limit:
        more = f"<p class=muted>Showing {limit} of {len(rows)}.</p>"
        rows = rows[:limit]
    th = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>{more}'


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;
background:#f6f7f9}
header{background:#17324d;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:14px 18px;
margin:16px 0}
h2{font-size:17px;margin:0 0 10px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #eceff2;padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:#f0f2f5;position:sticky;top:0}
.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#777}.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:10px 14px;
min-width:130px}
.card b{display:block;font-size:22px}.card.alert b{color:#c62828}
.flow,.timeline{width:100%;height:auto;font-size:12px}.band{opacity:.55}.band:hover{opacity:.9}
.matrix td,.matrix th{text-align:center}
.bars .barrow{display:flex;align-items:center;gap:8px;margin:3px 0}
.barlabel{width:180px}.bar{display:inline-block;height:12px;background:#d62728;border-radius:2px}
code{font-size:12px;word-break:break-all}
input[type=search]{padding:5px 8px;width:320px;margin-bottom:8px}
"""

# Tiny and dependency-free: filters the event table. It sets data-ready so a headless
# browser test can prove the script ran without errors.
_JS = """
(function(){
  var box=document.getElementById('filter');
  var rows=Array.prototype.slice.call(document.querySelectorAll('#events tbody tr'));
  var count=document.getElementById('shown');
  function apply(){
    var q=box.value.toLowerCase(), n=0;
    rows.forEach(function(r){
      var hit=!q||r.textContent.toLowerCase().indexOf(q)>=0;
      r.style.display=hit?'':'none'; if(hit){n++;}
    });
    count.textContent=String(n);
  }
  box.addEventListener('input',apply);
  apply();
  document.body.setAttribute('data-ready','1');
})();
"""

_CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
        "img-src data:")


def render_report(
    bundle: Bundle,
    *,
    verification: VerifyReport | None = None,
    now: datetime | None = None,
    max_events: int = 5000,
) -> str:
    events, bad = decode_events(bundle)
    a = analyse(events, now)
    a.undecodable = bad
    heads = sorted(bundle.heads, key=lambda h: (h.size, h.timestamp))
    latest = heads[-1] if heads else None

    if verification is None:
        status = ('<p class=muted>Not verified in this report: run '
                  '<code>orcon audit verify</code>.</p>')
    elif verification.ok:
        status = f"<p class=ok>Log verified: {_e(verification.summary())}</p>"
    else:
        items = "".join(
            f"<li><b>{_e(p.kind)}</b>: {_e(p.message)}</li>" for p in verification.problems
        )
        status = (f"<p class=bad>Log verification FAILED: first bad entry "
                  f"{_e(verification.first_bad)}</p><ul>{items}</ul>")
    head_html = (
        "<p class=muted>No signed tree heads.</p>" if latest is None else
        f"<p>Latest signed head: size <b>{latest.size}</b>, root "
        f"<code>{latest.root.hex()}</code>, signed {_e(latest.timestamp.isoformat())} "
        f"by key <code>{_e(latest.key_id)}</code>.</p>"
    )

    pending = [c for c in a.consents if c.outcome == "pending"]
    not_complied = [(c, h) for c in a.changes for h, at in c.holders.items() if at is None]
    cards = [
        ("entries", len(bundle.entries), False),
        ("submitted", a.by_type.get("submitted", 0), False),
        ("deliveries", len(a.deliveries), False),
        ("acts delivered", sum(a.acts_delivered.values()), False),
        ("refusals", len(a.refusals), False),
        ("unacknowledged", len(a.unacknowledged), bool(a.unacknowledged)),
        ("consents pending", len(pending), bool(pending)),
        ("violations", len(a.violations), bool(a.violations)),
        ("expired, not purged", len(a.expired_not_purged), bool(a.expired_not_purged)),
        ("changes not complied", len(not_complied), bool(not_complied)),
    ]
    cards_html = "".join(
        f'<div class="card{" alert" if alert else ""}" data-card="{_e(k)}">'
        f"<b>{v}</b>{_e(k)}</div>"
        for k, v, alert in cards
    )

    refusals = _table(
        ["time", "message", "sender", "recipient", "rule", "reason"],
        [[_t(e.at), _e(e.message_id), _e(e.actor), _e(e.counterpart), _e(e.rule),
          _e(e.reason)] for e in a.refusals],
    )
    unacked = _table(
        ["delivered", "message", "sender", "recipient", "age"],
        [[_t(d.at), _e(d.message_id), _e(d.sender), _e(d.recipient), _dur(a.now - d.at)]
         for d in a.unacknowledged],
        "unacked",
    )
    consents = _table(
        ["requested", "message", "requester", "originator", "purpose", "outcome",
         "time to decide"],
        [[_t(c.requested), _e(c.message_id), _e(c.requester), _e(c.originator),
          _e(c.purpose), f'<span class="{"bad" if c.outcome == "refused" else ""}">'
          f"{_e(c.outcome)}</span>", _dur(c.time_to_decide)] for c in a.consents],
    )
    decided = [c.time_to_decide for c in a.consents if c.time_to_decide is not None]
    consent_stats = Counter(c.outcome for c in a.consents)
    median = sorted(decided)[len(decided) // 2] if decided else None
    consent_summary = (
        f"<p>{len(a.consents)} requests: {consent_stats.get('granted', 0)} granted, "
        f"{consent_stats.get('refused', 0)} refused, {consent_stats.get('pending', 0)} "
        f"pending; median time to decide {_dur(median)}.</p>"
    )
    forwards = _table(
        ["time", "message", "from", "to", "outcome", "rule", "no onward dissemination"],
        [[_t(e.at), _e(e.message_id), _e(e.actor), _e(e.counterpart),
          "forwarded" if e.type is E.FORWARDED else "<span class=bad>refused</span>",
          _e(e.rule), _e(e.details.get("no_onward_dissemination", "?"))]
         for e in a.forwards],
    )
    violations = _table(
        ["time", "message", "agency", "violation", "purpose", "evidential", "restrictions"],
        [[_t(v.event.at), _e(v.event.message_id), _e(v.event.actor),
          f"<span class=bad>{_e(v.what)}</span>", _e(v.event.details.get("purpose", "")),
          _e(v.event.details.get("evidential", "")),
          _e(f"purposes={v.event.details.get('purposes', '')}; no_evidential_use="
             f"{v.event.details.get('no_evidential_use', '?')}")]
         for v in a.violations],
        "violations",
    )
    use_counts = Counter(
        "blocked by the recipient's SDK" if e.type is E.USE_REFUSED else
        ("evidential" if e.details.get("evidential") == "true" else "intelligence only")
        for e in a.uses
    )
    changes = _table(
        ["time", "change", "kind", "message", "originator", "holder", "complied"],
        [[_t(c.at), _e(c.change_id), _e(c.kind), _e(c.message_id), _e(c.originator),
          _e(h), _t(at) if at is not None else "<span class=bad>not yet</span>"]
         for c in a.changes for h, at in sorted(c.holders.items())],
    )
    expired = _table(
        ["message", "holder", "expired"],
        [[_e(m), _e(h), _t(t)] for m, h, t in a.expired_not_purged],
        "expired",
    )
    shown = a.events[:max_events]
    event_rows = _table(
        ["time", "type", "message", "actor", "counterpart", "rule", "reason"],
        [[_t(e.at), _e(e.type.value), _e(e.message_id or ""), _e(e.actor),
          _e(e.counterpart or ""), _e(e.rule or ""), _e(e.reason or "")] for e in shown],
        limit=max_events,
    )
    undecodable = (
        f"<p class=bad>{len(bad)} entries could not be decoded (positions "
        f"{_e(', '.join(map(str, bad[:20])))}).</p>" if bad else ""
    )

    return f"""<!DOCTYPE html>
<html lang=en><head><meta charset=utf-8>
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name=viewport content="width=device-width,initial-scale=1">
<title>orcon audit report</title><style>{_CSS}</style></head>
<body><header><h1>orcon audit report</h1>
<div>As of {_e(a.now.isoformat())} · metadata and proofs only, no message content</div>
</header><main>
<section id=log><h2>Log integrity</h2>{status}{head_html}
<p>{len(bundle.entries)} entries, {len(bundle.heads)} signed heads.</p>{undecodable}</section>
<div class=cards>{cards_html}</div>
<section id=flows><h2>Deliveries by originator and recipient country</h2>
{_flow_svg(a.flows)}{_matrix(a.flows)}</section>
<section id=refusals><h2>Refusals by rule</h2>{_bars(a.refusals_by_rule)}{refusals}</section>
<section id=violations><h2>Declared uses against the originator's restrictions</h2>
<p>Declared uses: {_e(", ".join(f"{k}: {v}" for k, v in use_counts.most_common()))}.
Evidential use of information restricted to intelligence use needs the originator's
consent (Protocol art. 10(2)); uses outside the allowed purposes, after expiry and
forwards without consent are listed as violations.</p>{violations}</section>
<section id=unacknowledged><h2>Deliveries never acknowledged</h2>{unacked}</section>
<section id=consent><h2>Consent requests</h2>{consent_summary}{consents}</section>
<section id=forwards><h2>Forwards</h2>{forwards}</section>
<section id=changes><h2>Amendments and withdrawals: who complied</h2>{changes}</section>
<section id=expired><h2>Expired but not purged</h2>{expired}</section>
<section id=timeline><h2>Timeline</h2>{_timeline_svg(a.events)}
<input type=search id=filter placeholder="filter events (agency, message, type…)">
<span class=muted><span id=shown>{len(shown)}</span> shown</span>
<div id=events>{event_rows}</div></section>
</main><script>{_JS}</script></body></html>
"""
