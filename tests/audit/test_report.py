"""The auditor's HTML report: findings, content, safety, and a real headless browser."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.audit_sample import sample_events
from broker.audit.events import AuditEvent
from broker.audit.heads import SignedTreeHead
from broker.audit.log import AuditLog
from broker.audit.report import analyse, render_report
from broker.audit.store import read_bundle
from broker.audit.verify import verify_bundle
from schemas.events import EventType

Builder = Callable[..., tuple[AuditLog, list[SignedTreeHead]]]
Maker = Callable[..., Path]
E = EventType
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
CHROMIUM = Path("/usr/bin/chromium")
RESTRICTED = {"origin_country": "IT", "recipient_country": "LY", "purposes": "smuggling",
              "no_evidential_use": "true", "no_onward_dissemination": "true"}


def ev(t: EventType, hours: float, actor: str, **kw: object) -> AuditEvent:
    return AuditEvent(type=t, at=T0 + timedelta(hours=hours), broker="b1", actor=actor,
                      **kw)  # type: ignore[arg-type]


def scenario() -> list[AuditEvent]:
    exp = (T0 + timedelta(days=7)).isoformat()
    past = (T0 + timedelta(days=1)).isoformat()
    return [
        ev(E.DELIVERED, 0, "IT-NCB", message_id="m1", counterpart="LY-BLO",
           details={**RESTRICTED, "expires_at": exp}),
        ev(E.ACKNOWLEDGED, 1, "LY-BLO", message_id="m1", counterpart="IT-NCB"),
        # Evidential use without consent: the violation Article 10(2) is about.
        ev(E.USE_DECLARED, 2, "LY-BLO", message_id="m1", counterpart="IT-NCB",
           details={**RESTRICTED, "purpose": "smuggling", "evidential": "true"}),
        ev(E.DELIVERED, 0, "GR-HCG", message_id="m2", counterpart="TN-BLO",
           details={"origin_country": "GR", "recipient_country": "TN", "expires_at": past}),
        ev(E.DELIVERED, 0, "IT-NCB", message_id="m3", counterpart="LY-BLO",
           details={**RESTRICTED, "expires_at": exp}),
        ev(E.ACKNOWLEDGED, 0.5, "LY-BLO", message_id="m3", counterpart="IT-NCB"),
        ev(E.CONSENT_REQUESTED, 1, "LY-BLO", message_id="m3", counterpart="IT-NCB",
           details={"purpose": "judicial-proceedings"}),
        ev(E.CONSENT_GRANTED, 6, "IT-NCB", message_id="m3", counterpart="LY-BLO"),
        ev(E.USE_DECLARED, 7, "LY-BLO", message_id="m3", counterpart="IT-NCB",
           details={**RESTRICTED, "purpose": "smuggling", "evidential": "true"}),
        ev(E.USE_DECLARED, 8, "LY-BLO", message_id="m3", counterpart="IT-NCB",
           details={**RESTRICTED, "purpose": "tax-evasion", "evidential": "false"}),
        ev(E.CONSENT_REQUESTED, 9, "LY-BLO", message_id="m1", counterpart="IT-NCB"),
        ev(E.FORWARDED, 10, "LY-BLO", message_id="m3", counterpart="NE-POL",
           details={**RESTRICTED, "recipient_country": "NE", "expires_at": exp}),
        ev(E.REFUSED, 0, "IT-NCB", message_id="m4", counterpart="TR-JAN", rule="exclude"),
        ev(E.REFUSED, 0, "IT-NCB", message_id="m4", counterpart="MA-DGSN", rule="exclude"),
        ev(E.REFUSED, 0, "IT-NCB", message_id="m4", counterpart="NG-NAPTIP", rule="clearance"),
    ]


def test_analysis_findings() -> None:
    a = analyse(scenario(), now=T0 + timedelta(days=3))
    assert a.flows == {("IT", "LY"): 2, ("GR", "TN"): 1}
    assert a.refusals_by_rule == {"exclude": 2, "clearance": 1}
    assert [(d.message_id, d.recipient) for d in a.unacknowledged] == [("m2", "TN-BLO")]
    outcomes = {(c.message_id, c.outcome): c.time_to_decide for c in a.consents}
    assert outcomes == {("m3", "granted"): timedelta(hours=5), ("m1", "pending"): None}
    found = sorted((v.event.message_id or "", v.what.split(" ")[0]) for v in a.violations)
    # m1 evidential without consent, m3 purpose outside, m3 forward without consent;
    # m3's evidential use came after consent, so it is not listed.
    assert found == [("m1", "evidential"), ("m3", "onward"), ("m3", "purpose")]
    assert [(m, h) for m, h, _ in a.expired_not_purged] == [("m2", "TN-BLO")]
    # Purging clears it; a later `now` expires the rest.
    purged = [*scenario(), ev(E.PURGED, 30, "TN-BLO", message_id="m2")]
    assert analyse(purged, now=T0 + timedelta(days=3)).expired_not_purged == []
    later = analyse(scenario(), now=T0 + timedelta(days=8)).expired_not_purged
    assert {(m, h) for m, h, _ in later} == {("m1", "LY-BLO"), ("m2", "TN-BLO"),
                                            ("m3", "LY-BLO"), ("m3", "NE-POL")}


def test_acknowledgment_without_logged_delivery_is_a_violation() -> None:
    """A recipient's signed acknowledgment of a message the log never delivered to it:
    some broker delivered outside the log."""
    events = [*scenario(), ev(E.ACKNOWLEDGED, 2, "MA-DGSN", message_id="m4",
                              counterpart="IT-NCB")]
    found = [v for v in analyse(events, now=T0 + timedelta(days=3)).violations
             if v.event.actor == "MA-DGSN"]
    assert len(found) == 1 and "without a logged delivery" in found[0].what
    # The recipients that really received m1 acknowledge without any violation.
    assert not [v for v in analyse(scenario()).violations if "logged delivery" in v.what]


def _sample_report(tmp_path: Path, build: Builder, make_bundle: Maker,
                   extra: list[AuditEvent] | None = None) -> tuple[str, Path]:
    events = sample_events(120)
    if extra:
        events = sorted([*events, *extra], key=lambda e: e.at)
    log, heads = build(events, head_every=200)
    d = make_bundle(log.entries(), heads)
    html = render_report(read_bundle(d), verification=verify_bundle(d))
    out = tmp_path / "report.html"
    out.write_text(html, encoding="utf-8")
    return html, out


def test_render_content_and_safety(tmp_path: Path, build: Builder, make_bundle: Maker) -> None:
    hostile = ev(E.REFUSED, 24, "<script>alert(1)</script>", message_id="m\"><img src=x>",
                 counterpart="LY-BLO", rule="<b>rule</b>", reason="a & b")
    html, _ = _sample_report(tmp_path, build, make_bundle, [hostile])
    for section in ("log", "flows", "refusals", "violations", "unacknowledged", "consent",
                    "forwards", "expired", "timeline"):
        assert f"<section id={section}>" in html
    assert "Log verified" in html
    assert html.count("<svg") >= 2 and 'class=band' in html
    for rule in ("exclude", "release-to", "clearance", "no-legal-basis"):
        assert rule in html
    assert "evidential use without the originator&#x27;s consent" in html
    assert "granted" in html and "pending" in html and "median time to decide" in html
    # Nothing from the log may become markup, and nothing may be fetched.
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x>" not in html and "<b>rule</b>" not in html
    assert html.count("<script>") == 1
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", html)
    assert "default-src 'none'" in html


def test_render_reports_failed_verification(
    tmp_path: Path, build: Builder, make_bundle: Maker
) -> None:
    log, heads = build(sample_events(20))
    entries = log.entries()
    del entries[10]
    d = make_bundle(entries, heads)
    html = render_report(read_bundle(d), verification=verify_bundle(d))
    assert "Log verification FAILED: first bad entry 10" in html


def _chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not CHROMIUM.exists():
        pytest.fail("chromium is not installed: run scripts/install-chromium.sh")
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr",
           "--v=0", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


# Chromium prints console messages as `...:INFO:CONSOLE:12] "text", source: url (12)`
# (older builds: `CONSOLE(12)`); a report page must print none at all.
CONSOLE = re.compile(r"CONSOLE[:(]?\d*\)?\]\s*\"(.*)\", source:")


def test_console_detector_catches_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><p>x</p><script>undefinedFunction();</script>")
    run = _chromium(tmp_path, bad, "--dump-dom")
    assert any("undefinedFunction" in m for m in CONSOLE.findall(run.stderr)), run.stderr


def test_report_in_headless_chromium(tmp_path: Path, build: Builder, make_bundle: Maker) -> None:
    _, page = _sample_report(tmp_path, build, make_bundle)
    shot = tmp_path / "report.png"
    run = _chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1280,2400",
                    "--hide-scrollbars")
    assert run.returncode == 0, run.stderr[-2000:]
    assert CONSOLE.findall(run.stderr) == [], run.stderr
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 50_000  # not a blank page
    dom = _chromium(tmp_path, page, "--dump-dom")
    assert CONSOLE.findall(dom.stderr) == [], dom.stderr
    assert 'data-ready="1"' in dom.stdout  # the inline script ran to the end
    assert "Deliveries by originator and recipient country" in dom.stdout


def test_acts_are_not_deliveries_awaiting_acknowledgment() -> None:
    """Issue 15 item 6: an acknowledgment (or any act) is logged `delivered` to the
    originator; the report counts it as an act, never as unacknowledged information."""
    events = [*scenario(),
              ev(E.DELIVERED, 1, "LY-BLO", message_id="ack1", counterpart="IT-NCB",
                 details={"kind": "acknowledgment", "origin_country": "LY",
                          "recipient_country": "IT"}),
              ev(E.DELIVERED, 2, "LY-BLO", message_id="use1", counterpart="IT-NCB",
                 details={"kind": "use_declaration", "origin_country": "LY",
                          "recipient_country": "IT"})]
    a = analyse(events, now=T0 + timedelta(days=3))
    assert [(d.message_id, d.recipient) for d in a.unacknowledged] == [("m2", "TN-BLO")]
    assert a.acts_delivered == {"acknowledgment": 1, "use_declaration": 1}
    assert a.flows == {("IT", "LY"): 2, ("GR", "TN"): 1}


def test_amendment_compliance_and_amended_restrictions_are_judged() -> None:
    exp = (T0 + timedelta(days=7)).isoformat()
    soon = (T0 + timedelta(days=1)).isoformat()
    wide = {**RESTRICTED, "purposes": "smuggling,trafficking", "expires_at": exp,
            "no_evidential_use": "false"}
    events = [
        ev(E.DELIVERED, 0, "IT-NCB", message_id="m9", counterpart="LY-BLO", details=wide),
        ev(E.DELIVERED, 0, "IT-NCB", message_id="m9", counterpart="TN-BLO",
           details={**wide, "recipient_country": "TN"}),
        ev(E.USE_DECLARED, 1, "LY-BLO", message_id="m9", counterpart="IT-NCB",
           details={**wide, "purpose": "trafficking", "evidential": "false"}),
        ev(E.AMENDED, 2, "IT-NCB", message_id="m9",
           details={**wide, "change": "c1", "holders": "LY-BLO,TN-BLO",
                    "purposes": "smuggling", "expires_at": soon}),
        ev(E.AMEND_APPLIED, 3, "LY-BLO", message_id="m9", counterpart="IT-NCB",
           details={"change": "c1"}),
        # After the amendment, the same use is outside the purposes now allowed.
        ev(E.USE_DECLARED, 4, "LY-BLO", message_id="m9", counterpart="IT-NCB",
           details={**wide, "purpose": "trafficking", "evidential": "false"}),
        ev(E.WITHDRAWN, 5, "IT-NCB", message_id="m9",
           details={"change": "c2", "holders": "LY-BLO,TN-BLO"}),
        ev(E.PURGED, 6, "TN-BLO", message_id="m9", counterpart="IT-NCB",
           details={"change": "c2", "reason": "originator_request"}),
    ]
    a = analyse(events, now=T0 + timedelta(days=2))
    assert [(c.change_id, c.kind, {h: t is not None for h, t in c.holders.items()})
            for c in a.changes] == [
        ("c1", "amendment", {"LY-BLO": True, "TN-BLO": False}),
        ("c2", "withdrawal", {"LY-BLO": False, "TN-BLO": True})]
    assert [v.event.at for v in a.violations] == [T0 + timedelta(hours=4)]
    # The amended expiry binds: LY-BLO holds m9 past it without purging; TN-BLO purged.
    assert [(m, h) for m, h, _ in a.expired_not_purged] == [("m9", "LY-BLO")]


def test_render_shows_who_complied(tmp_path: Path, build: Builder, make_bundle: Maker) -> None:
    extra = [ev(E.AMENDED, 1, "IT-NCB", message_id="m1",
                details={"change": "chg-1", "holders": "LY-BLO"})]
    html, _ = _sample_report(tmp_path, build, make_bundle, extra)
    assert "<section id=changes>" in html and "chg-1" in html and "not yet" in html
    assert 'data-card="changes not complied"' in html and 'data-card="acts delivered"' in html
