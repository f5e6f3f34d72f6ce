"""issue 14: the deployed layout itself. `orcon deploy render` writes the hub and the
national leafnodes; they run as separate nats-server processes from those files; the
sequencer, a broker and the acknowledgment watcher run as separate `orcon service`
processes, each with its own credential; desks connect to their own country's
leafnode; the auditor fetches and verifies the log from the hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import schemas
from broker.audit.events import EventType, decode_record
from broker.audit.store import iter_entries
from broker.audit.verify import verify_bundle
from clients.auditor import fetch_bundle
from schemas import Category, Level
from tests.ops.fedrig import DeployedFederation

SLOW = pytest.mark.skipif(not os.environ.get("ORCON_SLOW"),
                          reason="long mode only (ORCON_SLOW=1): restarts servers")


def report(text: str) -> schemas.IntelReport:
    return schemas.IntelReport(title="Mekong crossing",
                               narrative=schemas.Narrative(text=text, lang="en"))


async def _audited(fed: DeployedFederation, out: Path, ids: set[str]) -> list[object]:
    """Fetch with the auditor's credential from the hub until the log holds `ids`
    delivered to KH; the bundle must verify."""
    import asyncio

    for _ in range(60):
        await fetch_bundle(fed.auditors(), "XX-AUDIT", out)
        events = [decode_record(e).event for e in iter_entries(out)]
        delivered = {e.message_id for e in events
                     if e.type == EventType.DELIVERED and e.counterpart == "KH-AHTJP"}
        if ids <= delivered:
            result = verify_bundle(out)
            assert result.ok, result.summary()
            return events
        await asyncio.sleep(0.5)
    raise AssertionError(f"the log never showed {sorted(ids - delivered)} delivered")


@pytest.mark.timeout(240)
async def test_exchange_across_leafnodes_is_in_the_auditors_log(tmp_path: Path) -> None:
    async with DeployedFederation(tmp_path) as fed:
        th = await fed.desk("TH", "TH-AHTD")
        kh = await fed.desk("KH", "KH-AHTJP")
        sent = await th.send(report("Boats leave at night."), category=Category.ROUTES,
                             level=Level.CONFIDENTIAL, to=["KH-AHTJP"])
        outcome = await th.wait_outcome(sent.header.id, timeout=30)
        assert outcome.delivered == ["KH-AHTJP"]
        batch = await kh.inbox(timeout=10)
        assert [m.header.id for m in batch.messages] == [sent.header.id]
        assert batch.messages[0].header.sender == "TH-AHTD"
        events = await _audited(fed, tmp_path / "audit", {sent.header.id})
        assert any(e.type == EventType.SUBMITTED and e.message_id == sent.header.id  # type: ignore[attr-defined]
                   for e in events)
