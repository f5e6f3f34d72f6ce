"""Exporting is a use, against a real nats-server and broker: refused under TLP:RED,
under no onward dissemination without consent, and outside the purposes, each refusal
in the audit log; allowed once the originator consents to this agency's export, with a
MISP distribution of "your organisation only"; the CLI says the same."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner

from broker.audit.events import AuditEvent
from broker.hosting.stack import DevStack
from clients.cli.main import app
from clients.interop import markings as mk
from clients.interop import tags as tg
from clients.interop.export import export_message, render
from clients.interop.importer import decode_draft
from clients.sdk.holder import Holder, UseRefused
from schemas import TLP, Category, Level, Purpose, Restrictions, examples
from schemas.acts import Act
from schemas.codes import ConsentScope, UseKind
from schemas.events import EventType

HolderFactory = Callable[[str], Awaitable[Holder]]

PURPOSES = [Purpose.SMUGGLING_OF_MIGRANTS, Purpose.INTELLIGENCE_ANALYSIS]


async def _received(th: Holder, kh: Holder, r: Restrictions, sync_until: Any) -> str:
    sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.CONFIDENTIAL, restrictions=r, to=["KH-AHTJP"])
    await sync_until(kh, sent.id)
    await kh.open(sent.id)
    return sent.id


def _exports(events: list[AuditEvent], message_id: str) -> list[AuditEvent]:
    return [e for e in events if e.message_id == message_id
            and e.type in (EventType.USE_REFUSED, EventType.USE_DECLARED)
            and e.details.get("action") == "export"]


async def test_export_refusals_are_refused_and_audited(
        stack: DevStack, holder: HolderFactory, sync_until: Any, audit: Any) -> None:
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    red = await _received(th, kh, Restrictions(tlp=TLP.RED, purposes=PURPOSES), sync_until)
    h2 = await _received(th, kh, Restrictions(purposes=PURPOSES,
                                              no_onward_dissemination=True), sync_until)
    open_ = await _received(th, kh, Restrictions(purposes=PURPOSES, tlp=TLP.GREEN),
                            sync_until)
    cases = [(red, "stix", Purpose.INTELLIGENCE_ANALYSIS, "restriction.tlp"),
             (h2, "misp", Purpose.INTELLIGENCE_ANALYSIS, "restriction.no_onward_dissemination"),
             (open_, "stix", Purpose.CORRUPTION, "restriction.purpose")]
    for message_id, fmt, purpose, rule in cases:
        with pytest.raises(UseRefused) as exc:
            await export_message(kh, message_id, fmt, purpose)  # type: ignore[arg-type]
        assert exc.value.rule == rule, (message_id, exc.value)
        assert str(purpose) in exc.value.reason or "TH-AHTD" in exc.value.reason
    allowed = await export_message(kh, open_, "stix", Purpose.INTELLIGENCE_ANALYSIS)
    bundle = json.loads(allowed.data)
    assert allowed.declaration is not None and bundle["type"] == "bundle"
    assert mk.TLP_MARKING_IDS[TLP.GREEN] in {o["id"] for o in bundle["objects"]}

    def done(evs: list[AuditEvent]) -> bool:
        return sum(len(_exports(evs, m)) for m in (red, h2, open_)) >= 4

    events = await audit(stack, done)
    for message_id, _, purpose, rule in cases:
        refused = [e for e in _exports(events, message_id) if e.type == EventType.USE_REFUSED]
        assert [(e.rule, e.actor, e.details["purpose"]) for e in refused] == [
            (rule, "KH-AHTJP", str(purpose))], message_id
    declared = [e for e in _exports(events, open_) if e.type == EventType.USE_DECLARED]
    assert [(e.actor, e.details["purpose"]) for e in declared] == [
        ("KH-AHTJP", "intelligence_analysis")]


async def test_export_under_h2_after_consent_is_org_only(
        stack: DevStack, holder: HolderFactory, sync_until: Any, audit: Any) -> None:
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    info = await _received(th, kh, Restrictions(purposes=PURPOSES, tlp=TLP.AMBER),
                           sync_until)
    with pytest.raises(UseRefused):
        await export_message(kh, info, "misp", Purpose.SMUGGLING_OF_MIGRANTS)
    # A consent to forward to a third party is no consent to export: it names another.
    req = await kh.request_consent(info, ConsentScope.ONWARD_DISSEMINATION, to="KH-AHTJP",
                                   justification="Load into our national MISP instance.")
    await sync_until(th, req.id)
    decision = await th.grant(req.id, conditions=["Keep within the unit's MISP."])
    await sync_until(kh, decision.id)
    exported = await export_message(kh, info, "misp", Purpose.SMUGGLING_OF_MIGRANTS)
    event = json.loads(exported.data)["Event"]
    assert exported.distribution == tg.ORG_ONLY and int(event["distribution"]) == 0
    assert "tlp:amber" in {t["name"] for t in event["Tag"]}
    assert exported.declaration is not None and exported.declaration.act is not None
    assert exported.declaration.act.consent is not None

    def done(evs: list[AuditEvent]) -> bool:
        return any(e.type == EventType.USE_DECLARED for e in _exports(evs, info))

    events = _exports(await audit(stack, done), info)
    assert [e.type for e in events] == [EventType.USE_REFUSED, EventType.USE_DECLARED]
    assert events[1].details["consent"] == decision.id


async def test_cli_export_and_import(stack: DevStack, holder: HolderFactory,
                                     sync_until: Any, tmp_path: Path) -> None:
    th = await holder("TH-AHTD")
    r = Restrictions(purposes=PURPOSES, tlp=TLP.GREEN, exclude=["MM"])
    sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.RESTRICTED, restrictions=r, to=["KH-AHTJP"])
    red = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                        level=Level.RESTRICTED, restrictions=Restrictions(tlp=TLP.RED),
                        to=["KH-AHTJP"])
    base = ["--data-dir", str(stack.data_dir), "--as", "KH-AHTJP"]
    runner = CliRunner()
    out = tmp_path / "event.json"
    ok = await asyncio.to_thread(runner.invoke, app, [
        "export", "misp", sent.id, "--purpose", "intelligence_analysis", "-o", str(out),
        *base])
    assert ok.exit_code == 0, ok.output
    assert "export declared" in ok.output and "MISP distribution 0" in ok.output
    refused = await asyncio.to_thread(runner.invoke, app, [
        "export", "stix", red.id, "--purpose", "intelligence_analysis", *base])
    assert refused.exit_code == 2, refused.output
    assert "restriction.tlp" in refused.output
    draft_file = tmp_path / "draft.json"
    imported = await asyncio.to_thread(runner.invoke, app, [
        "import", "misp", str(out), "-o", str(draft_file)])
    assert imported.exit_code == 0, imported.output
    assert "not sent" in imported.output
    draft = json.loads(draft_file.read_text())
    assert draft["draft"] == "orcon-draft/1"
    got = draft["header"]["restrictions"]
    assert got["tlp"] == "GREEN" and got["exclude"] == ["MM"]
    assert got["no_onward_dissemination"] is True  # distribution 0 is a marking too
    bad = await asyncio.to_thread(runner.invoke, app, ["import", "stix", str(out)])
    assert bad.exit_code == 1 and "bundle" in bad.output
    # The officer reviews the draft, picks the Art. 10(1) category (a draft proposes
    # "other", which no agreement here covers) and sends it as an ordinary message.
    d = decode_draft(draft_file.read_bytes())
    assert d.header.category is Category.OTHER
    kh = await holder("KH-AHTJP")
    resent = await kh.client.send(d.body, category=Category.ROUTES, level=d.header.level,
                                  restrictions=d.header.restrictions, to=["TH-AHTD"])
    assert resent.submitted, resent.refused
    outcome = await kh.client.wait_outcome(resent.header.id)
    assert outcome.delivered == ["TH-AHTD"], outcome
    await sync_until(th, resent.header.id)
    assert th.get(resent.header.id).header.restrictions == d.header.restrictions


async def test_a_forwarding_consent_cannot_be_replayed_as_an_export_consent(
        stack: DevStack, holder: HolderFactory, sync_until: Any, audit: Any) -> None:
    """Attack: the holder obtained consent to forward to a third party and presents it
    with an export declaration. The consent names another party: the broker refuses
    (consent.scope) and logs the attempt."""
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    info = await _received(th, kh, Restrictions(purposes=PURPOSES,
                                                no_onward_dissemination=True), sync_until)
    req = await kh.request_consent(info, ConsentScope.ONWARD_DISSEMINATION, to="VN-MPS",
                                   justification="Joint investigation with Viet Nam.")
    await sync_until(th, req.id)
    decision = await th.grant(req.id)
    await sync_until(kh, decision.id)
    grant = kh.consents(info, ConsentScope.ONWARD_DISSEMINATION, "VN-MPS")
    assert len(grant) == 1
    row = kh.get(info)
    _, original, via = kh._original(row)
    body = msgspec.structs.replace(examples.use_declaration(), message_id=info,
                                   use=UseKind.EXPORT,
                                   purpose=Purpose.SMUGGLING_OF_MIGRANTS)
    act = Act(message_id=info, original=original, via=via, use=UseKind.EXPORT,
              purpose=Purpose.SMUGGLING_OF_MIGRANTS, consent=grant[0])
    _, outcome = await kh._act(row, body, act)
    assert outcome is not None and outcome.status == "refused"
    assert outcome.refused[0].rule == "consent.scope"

    def done(evs: list[AuditEvent]) -> bool:
        return bool(_exports(evs, info))

    events = _exports(await audit(stack, done), info)
    assert [(e.type, e.rule) for e in events] == [(EventType.USE_REFUSED, "consent.scope")]


def test_imported_text_is_never_read_as_markup(tmp_path: Path) -> None:
    """Attack: a bundle whose foreign statement carries console markup. The CLI prints it
    literally (escaped), so a source cannot restyle or hide the warning."""
    body = examples.mekong_route_report()
    h = examples.example_header(body)
    data, _ = render("stix", h, body, h.restrictions)
    bundle = json.loads(data)
    marking = {"type": "marking-definition", "spec_version": "2.1",
               "id": "marking-definition--0b5c3cde-4bd6-4b8a-9d51-6d3a2f3c5e11",
               "created": "2025-01-01T00:00:00.000Z", "definition_type": "statement",
               "definition": {"statement": "[white on white]hidden[/] share freely"}}
    bundle["objects"].append(marking)
    for o in bundle["objects"]:
        if o["type"] == "report":
            o["object_marking_refs"].append(marking["id"])
    src = tmp_path / "bundle.json"
    src.write_text(json.dumps(bundle))
    result = CliRunner().invoke(app, ["import", "stix", str(src), "-o",
                                      str(tmp_path / "d.json")])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # the console wraps long lines
    assert "[white on white]hidden[/] share freely" in said
