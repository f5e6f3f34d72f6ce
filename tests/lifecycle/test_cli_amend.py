"""`orcon amend`, `orcon withdraw` and `orcon compliance` as a liaison officer uses them,
against a real stack: tighten only (a looser or unreadable amendment is refused with its
rule), holders apply on their next command, receipts come back, a withdrawn message is
gone from the holder's store."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.hosting.stack import DevStack
from schemas import examples
from tests.support.cli import body_file, message_id, orcon


async def test_amend_and_withdraw_from_the_cli(stack: DevStack, tmp_path: Path) -> None:
    body = body_file(tmp_path, examples.mekong_route_report())
    sent = await orcon(stack, "send", "--as", "TH-AHTD", "--body", body, "--to", "KH-AHTJP",
                       "--category", "a", "--expires-in-days", "30")
    assert sent.exit_code == 0, sent.output
    mid = message_id(sent.output)
    fetched = await orcon(stack, "purge", "--as", "KH-AHTJP")
    assert fetched.exit_code == 0, fetched.output

    looser = await orcon(stack, "amend", mid, "--as", "TH-AHTD", "--expires-in-days", "60")
    assert looser.exit_code == 2 and "amend.loosen" in looser.output, looser.output
    unknown = await orcon(stack, "amend", mid, "--as", "TH-AHTD", "--exclude", "MYANMAR")
    assert unknown.exit_code == 2, unknown.output
    assert "amend.unknown" in unknown.output and "MYANMAR" in unknown.output
    not_mine = await orcon(stack, "amend", mid, "--as", "KH-AHTJP", "--exclude", "MM")
    assert not_mine.exit_code == 2 and "amend.not-originator" in not_mine.output

    amended = await orcon(stack, "amend", mid, "--as", "TH-AHTD", "--expires-in-days", "2",
                          "--exclude", "MM", "--no-onward-dissemination",
                          "--reason", "operation moved forward")
    assert amended.exit_code == 0, amended.output
    assert f"of {mid} sent to: KH-AHTJP" in amended.output

    inbox = await orcon(stack, "inbox", "--as", "KH-AHTJP", "--json", "--wait", "1")
    assert inbox.exit_code == 0, inbox.output
    shown = {m["header"]["id"]: m for m in json.loads(inbox.output)}
    r = shown[mid]["restrictions"]
    assert r["exclude"] == ["MM"] and r["no_onward_dissemination"] is True
    assert datetime.fromisoformat(r["expires_at"]) < datetime.now(UTC) + timedelta(days=3)

    complied = ""
    for _ in range(10):
        status = await orcon(stack, "compliance", mid, "--as", "TH-AHTD")
        assert status.exit_code == 0, status.output
        complied = status.output
        if "KH-AHTJP" in complied and "not yet" not in complied:
            break
        await asyncio.sleep(0.3)
    assert "KH-AHTJP" in complied and "not yet" not in complied, complied

    withdrawn = await orcon(stack, "withdraw", mid, "--as", "TH-AHTD",
                            "--reason", "source compromised")
    assert withdrawn.exit_code == 0, withdrawn.output
    gone = await orcon(stack, "use", mid, "--as", "KH-AHTJP",
                       "--purpose", "smuggling_of_migrants")
    assert gone.exit_code == 2 and "store.unknown" in gone.output, gone.output
