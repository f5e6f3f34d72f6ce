"""The life-cycle commands against a real stack (each runs its own event loop, so they
are invoked from a thread), and the alert view's rendering."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from typer.testing import CliRunner

from broker.hosting.stack import DevStack
from clients.cli.main import app
from clients.sdk.alerts import alerts_table
from clients.sdk.holder import Holder
from schemas import TLP, Category, Level, Purpose, Restrictions, Topics, examples

HolderFactory = Callable[[str], Awaitable[Holder]]


async def test_use_and_requests_commands(stack: DevStack, holder: HolderFactory) -> None:
    th = await holder("TH-AHTD")
    info = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.RESTRICTED, to=["KH-AHTJP"],
                         restrictions=Restrictions(purposes=[Purpose.SMUGGLING_OF_MIGRANTS]))
    base = ["--data-dir", str(stack.data_dir), "--as", "KH-AHTJP"]
    runner = CliRunner()
    refused = await asyncio.to_thread(
        runner.invoke, app, ["use", info.id, "--purpose", "corruption", *base])
    assert refused.exit_code == 2, refused.output
    assert "restriction.purpose" in refused.output
    ok = await asyncio.to_thread(
        runner.invoke, app, ["use", info.id, "--purpose", "smuggling_of_migrants", *base])
    assert ok.exit_code == 0, ok.output
    assert "use declared" in ok.output
    reqs = await asyncio.to_thread(runner.invoke, app, ["requests", "--overdue", *base])
    assert reqs.exit_code == 0 and "no requests" in reqs.output
    purged = await asyncio.to_thread(runner.invoke, app, ["purge", *base])
    assert purged.exit_code == 0 and "purged 0" in purged.output


async def test_alert_view_shows_restrictions(holder: HolderFactory, sync_until: Any) -> None:
    th, blo = await holder("TH-AHTD"), await holder("TH-BLO-CHIANGSAEN")
    sent = await th.send(examples.arrest_alert(), category=Category.GROUPS,
                         level=Level.RESTRICTED, audience=["TH"],
                         topics=Topics(route_countries=["MM"]),
                         restrictions=Restrictions(tlp=TLP.AMBER, no_evidential_use=True))
    got = await sync_until(blo, lambda r: any(x.id == sent.id for x in r.new))
    console = Console(width=200, record=True)
    console.print(alerts_table(got.new))
    text = console.export_text()
    assert sent.id in text and "TLP:AMBER" in text and "no onward" in text
    assert "no evidence" in text and "Tachileik" in text
