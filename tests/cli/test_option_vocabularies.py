"""An option that takes a code or an id refuses a value outside its vocabulary, naming
the option, the value and what is valid (exit 2, a typed JSON error with --json). A
filter never reads a typo as "nothing matches": `orcon list --kind intel-report` used to
print "no messages" to a liaison officer whose inbox held intel reports. Real `orcon`
commands against a real nats-server and broker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from typer.testing import Result

from schemas import examples
from tests.support.cli import Orcon, body_file, json_out


def _refused(result: Result, option: str, value: str) -> dict[str, Any]:
    """The typed error of a refused option value (--json): exit 2, nothing on stdout."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.stdout == "", result.stdout
    doc: dict[str, Any] = json.loads(result.stderr)
    assert doc["option"] == option and doc["value"] == value, doc
    assert doc["exit"] == 2 and option in doc["error"] and value in doc["error"], doc
    return doc


async def test_list_refuses_an_unknown_kind_sender_direction_or_state(
        orcon: Orcon, tmp_path: Path) -> None:
    body = body_file(tmp_path, examples.mekong_route_report())
    sent = json_out(await orcon("send", "--as", "TH-AHTD", "--body", body, "--to",
                                "KH-AHTJP", "--category", "a", "--json"))
    listed = json_out(await orcon("list", "--as", "KH-AHTJP", "--kind", "intel_report",
                                  "--from", "TH-AHTD", "--json"))
    assert [r["id"] for r in listed] == [sent["id"]]

    typo = _refused(await orcon("list", "--as", "KH-AHTJP", "--kind", "intel-report",
                                "--json"), "--kind", "intel-report")
    assert typo["rule"] == "option.choice" and "intel_report" in typo["choices"]
    # Shaped like an agency id but no agency of the directory, and not one at all.
    nobody = _refused(await orcon("list", "--as", "KH-AHTJP", "--from", "TH-AHDT",
                                  "--json"), "--from", "TH-AHDT")
    assert nobody["rule"] == "option.choice" and "TH-AHTD" in nobody["choices"]
    lower = _refused(await orcon("list", "--as", "KH-AHTJP", "--from", "th-ahtd",
                                 "--json"), "--from", "th-ahtd")
    assert lower["rule"] == "option.pattern"
    _refused(await orcon("list", "--as", "KH-AHTJP", "--direction", "inbound", "--json"),
             "--direction", "inbound")
    _refused(await orcon("list", "--as", "KH-AHTJP", "--state", "unread", "--json"),
             "--state", "unread")
    # Without --json: one line naming the option and the valid kinds.
    text = await orcon("list", "--as", "KH-AHTJP", "--kind", "intel-report")
    assert text.exit_code == 2 and "--kind" in text.output and "intel_report" in text.output
    assert "no messages" not in text.output


async def test_send_refuses_an_evaluation_that_is_not_one_of_the_sixteen_codes(
        orcon: Orcon, tmp_path: Path) -> None:
    body = body_file(tmp_path, examples.mekong_route_report())
    base = ("send", "--as", "TH-AHTD", "--body", body, "--to", "KH-AHTJP",
            "--category", "a", "--dry-run", "--json")
    for bad in ("B+2", "B02", "B 2", "B2x", "D1", "A5", "A", "2"):
        doc = _refused(await orcon(*base, "--evaluation", bad), "--evaluation", bad)
        assert "B2" in doc["choices"] and len(doc["choices"]) == 16, doc
    ok = json_out(await orcon(*base, "--evaluation", "b2"))
    assert ok["dry_run"] is True


async def test_audit_events_refuses_a_party_the_log_never_names_and_a_malformed_id(
        orcon: Orcon, tmp_path: Path) -> None:
    body = body_file(tmp_path, examples.mekong_route_report())
    json_out(await orcon("send", "--as", "TH-AHTD", "--body", body, "--to", "KH-AHTJP",
                         "--category", "a", "--json"))
    bundle = tmp_path / "audit"
    for _ in range(40):  # the sequencer appends asynchronously: fetch until it has
        assert (await orcon("audit", "fetch", str(bundle))).exit_code == 0
        if json_out(await orcon("audit", "events", str(bundle), "--agency", "KH-AHTJP",
                                "--json", data_dir=False)):
            break
        await asyncio.sleep(0.25)
    doc = _refused(await orcon("audit", "events", str(bundle), "--agency", "KH-AHJTP",
                               "--json", data_dir=False), "--agency", "KH-AHJTP")
    assert "KH-AHTJP" in doc["choices"]
    doc = _refused(await orcon("audit", "events", str(bundle), "--message", "not-an-id",
                               "--json", data_dir=False), "--message", "not-an-id")
    assert doc["rule"] == "option.pattern"
