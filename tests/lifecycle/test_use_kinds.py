"""Use-time checks against a real nats-server: each restriction that governs a use is
checked when a use of that kind is declared (issue 15, "use-time checks").

- no_public_disclosure (also set by TLP:GREEN and above) governs `public_disclosure`;
- not_to_suspects (also set by TLP:RED and AMBER+STRICT) governs `show_to_suspect`;
- consult_before_action governs `executive_action`.

Each is refused without the originator's consent, by the SDK and, when the SDK's check
is skipped, by the broker (Cedar), then allowed once the originator grants consent for
exactly that scope to that holder; other kinds of use are not affected. Every decision
is in the audit log. From the CLI too: `orcon send --not-to-suspects ...`,
`orcon use ID --purpose P --kind show_to_suspect`, `orcon consent request --action ...`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner

from broker.hosting.stack import DevStack
from clients.cli.life import store_path
from clients.cli.main import app
from clients.sdk.holder import Holder, UseRefused
from schemas import TLP, Category, Level, Purpose, Restrictions, examples
from schemas.codes import USE_CONSENT, ConsentScope, UseKind
from schemas.events import EventType

HolderFactory = Callable[[str], Awaitable[Holder]]

CASES = [
    (Restrictions(no_public_disclosure=True), UseKind.PUBLIC_DISCLOSURE,
     "restriction.no_public_disclosure"),
    (Restrictions(tlp=TLP.GREEN), UseKind.PUBLIC_DISCLOSURE,
     "restriction.no_public_disclosure"),
    (Restrictions(not_to_suspects=True), UseKind.SHOW_TO_SUSPECT,
     "restriction.not_to_suspects"),
    (Restrictions(tlp=TLP.AMBER_STRICT), UseKind.SHOW_TO_SUSPECT,
     "restriction.not_to_suspects"),
    (Restrictions(consult_before_action=True), UseKind.EXECUTIVE_ACTION,
     "restriction.consult_before_action"),
]


@pytest.mark.parametrize(("restrictions", "kind", "rule"), CASES,
                         ids=[f"{c[2]}-{c[0].tlp or 'flag'}" for c in CASES])
async def test_use_kind_refused_without_consent_then_allowed_with_it(
        stack: DevStack, holder: HolderFactory, sync_until: Any, audit: Any,
        restrictions: Restrictions, kind: UseKind, rule: str) -> None:
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    info = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.CONFIDENTIAL, restrictions=restrictions, to=["KH-AHTJP"])
    await sync_until(kh, lambda r: any(x.id == info.id for x in r.new))

    with pytest.raises(UseRefused) as exc:  # the SDK refuses early
        await kh.use(info.id, Purpose.INVESTIGATION, use=kind)
    assert exc.value.rule == rule and "TH-AHTD" in exc.value.reason
    with pytest.raises(UseRefused) as exc:  # and the broker on its own
        await kh.use(info.id, Purpose.INVESTIGATION, use=kind, check=False)
    assert exc.value.rule == rule
    analysis = await kh.use(info.id, Purpose.INVESTIGATION)  # another kind: not governed

    req = await kh.request_consent(info.id, USE_CONSENT[kind],
                                   justification="Operational need, see case file.")
    await sync_until(th, lambda r: any(x.id == req.id for x in r.new))
    decision = await th.grant(req.id)
    await sync_until(kh, lambda r: any(x.id == decision.id for x in r.new))
    used = await kh.use(info.id, Purpose.INVESTIGATION, use=kind)
    assert used.act is not None and used.act.consent is not None

    def done(evs: list[Any]) -> bool:
        return sum(e.type == EventType.USE_DECLARED and e.message_id == info.id
                   for e in evs) >= 2

    events = [e for e in await audit(stack, done) if e.message_id == info.id]
    refused = [(e.rule, e.details["action"]) for e in events
               if e.type == EventType.USE_REFUSED]
    assert refused == [(rule, str(kind))]
    declared = [(e.details["action"], e.details.get("consent")) for e in events
                if e.type == EventType.USE_DECLARED]
    assert declared == [("analysis", None), (str(kind), decision.id)]
    assert analysis.id != used.id


async def test_consent_for_one_use_kind_does_not_cover_another(
        holder: HolderFactory, sync_until: Any) -> None:
    """A grant to disclose publicly is no grant to show the information to a suspect."""
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    info = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.CONFIDENTIAL, to=["KH-AHTJP"],
                         restrictions=Restrictions(tlp=TLP.RED))  # both, by the label
    await sync_until(kh, lambda r: any(x.id == info.id for x in r.new))
    req = await kh.request_consent(info.id, ConsentScope.PUBLIC_DISCLOSURE,
                                   justification="Press release after the arrests.")
    await sync_until(th, lambda r: any(x.id == req.id for x in r.new))
    decision = await th.grant(req.id)
    await sync_until(kh, lambda r: any(x.id == decision.id for x in r.new))
    await kh.use(info.id, Purpose.INVESTIGATION, use=UseKind.PUBLIC_DISCLOSURE)
    with pytest.raises(UseRefused) as exc:
        await kh.use(info.id, Purpose.INVESTIGATION, use=UseKind.SHOW_TO_SUSPECT,
                     check=False)
    assert exc.value.rule == "restriction.not_to_suspects"
    assert "TLP:RED" in exc.value.reason


async def test_use_kinds_from_the_cli(stack: DevStack, tmp_path: Path,
                                      holder: HolderFactory, sync_until: Any) -> None:
    runner = CliRunner()
    body = tmp_path / "report.json"
    body.write_bytes(msgspec.json.encode(examples.mekong_route_report()))
    sent = await asyncio.to_thread(runner.invoke, app, [
        "send", "-d", str(stack.data_dir), "--as", "TH-AHTD", "--body", str(body),
        "--category", "a", "--level", "CONFIDENTIAL", "--to", "KH-AHTJP",
        "--purpose", "investigation", "--not-to-suspects", "--consult-before-action",
        "--no-public-disclosure"])
    assert sent.exit_code == 0, sent.output
    mid = sent.output.split("message ", 1)[1].split()[0]
    as_kh = ["-d", str(stack.data_dir), "--as", "KH-AHTJP"]

    for kind, rule in (("show_to_suspect", "restriction.not_to_suspects"),
                       ("public_disclosure", "restriction.no_public_disclosure"),
                       ("executive_action", "restriction.consult_before_action")):
        res = await asyncio.to_thread(runner.invoke, app, [
            "use", mid, "--purpose", "investigation", "--kind", kind, *as_kh])
        assert res.exit_code == 2, res.output
        assert rule in res.output and "TH-AHTD" in res.output
    wrong_purpose = await asyncio.to_thread(runner.invoke, app, [
        "use", mid, "--purpose", "corruption", "--kind", "analysis", *as_kh])
    assert wrong_purpose.exit_code == 2 and "restriction.purpose" in wrong_purpose.output

    # Consent from the CLI. The originator's store must hold the original: here it was
    # sent through an SDK holder sharing the CLI's store (a CLI-sent message has no
    # sender's copy yet: issue 15 item 3).
    assert stack.connection is not None
    th = await Holder.open_for(stack.connection, "TH-AHTD",
                               store_path(stack.data_dir, "TH-AHTD"),
                               passphrase=stack.passphrase())
    try:
        info = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                             level=Level.CONFIDENTIAL, to=["KH-AHTJP"],
                             restrictions=Restrictions(not_to_suspects=True))
    finally:
        await th.close()
    refused = await asyncio.to_thread(runner.invoke, app, [
        "use", info.id, "--purpose", "investigation", "--kind", "show_to_suspect", *as_kh])
    assert refused.exit_code == 2 and "restriction.not_to_suspects" in refused.output
    asked = await asyncio.to_thread(runner.invoke, app, [
        "consent", "request", info.id, "--action", "show_to_suspect",
        "--justification", "Interview of the driver.", *as_kh])
    assert asked.exit_code == 0, asked.output
    req_id = asked.output.split("consent requested: ", 1)[1].split()[0]
    granted = await asyncio.to_thread(runner.invoke, app, [
        "consent", "grant", req_id, "-d", str(stack.data_dir), "--as", "TH-AHTD"])
    assert granted.exit_code == 0, granted.output
    for _ in range(20):  # the grant reaches KH's store on its next sync
        ok = await asyncio.to_thread(runner.invoke, app, [
            "use", info.id, "--purpose", "investigation", "--kind", "show_to_suspect",
            *as_kh])
        if ok.exit_code == 0:
            break
        await asyncio.sleep(0.2)
    assert ok.exit_code == 0, ok.output
    assert "use declared" in ok.output
