"""The CLI a person can use (issue 16): draft, send --dry-run and every header field,
reply, list, show, whoami, agencies, and one `--json` shape. Each command runs as
`orcon` does (typer's CliRunner) against a real nats-server and broker (`stack`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

import schemas
from clients.cli.main import app
from schemas import examples
from schemas.examples import EXAMPLES
from tests.support.cli import Orcon, body_file, json_out


def test_draft_writes_a_valid_example_body_for_every_kind(tmp_path: Path) -> None:
    runner = CliRunner()
    for kind in EXAMPLES:
        out = tmp_path / f"{kind}.json"
        res = runner.invoke(app, ["draft", kind, "-o", str(out)])
        assert res.exit_code == 0, (kind, res.output)
        body = schemas.decode_body_json(out.read_bytes())  # every content rule checked
        assert type(body).__struct_config__.tag == kind
    printed = runner.invoke(app, ["draft", "alert"])
    assert printed.exit_code == 0
    assert json.loads(printed.stdout)["kind"] == "alert"
    wrong = runner.invoke(app, ["draft", "intel-report"])
    assert wrong.exit_code == 2
    assert "intel_report" in wrong.output  # names the valid kinds


async def test_dry_run_says_who_would_receive_and_seals_nothing(
        orcon: Orcon, tmp_path: Path) -> None:
    body = body_file(tmp_path, examples.mekong_route_report())
    args = ("send", "--as", "TH-AHTD", "--body", body, "--category", "a",
            "--level", "CONFIDENTIAL", "--audience", "COMMIT", "--exclude", "MM", "--dry-run")
    shown = await orcon(*args)
    assert shown.exit_code == 0, shown.output
    assert "would receive" in shown.output and "KH-AHTJP" in shown.output
    assert "MM-ATIPD" in shown.output and "restriction.exclude" in shown.output
    assert "nothing was sealed" in shown.output
    doc = json_out(await orcon(*args, "--json"))
    assert doc["dry_run"] is True and "KH-AHTJP" in doc["permitted"]
    assert {"recipient": "MM-ATIPD", "rule": "restriction.exclude"}.items() <= next(
        r for r in doc["refused"] if r["recipient"] == "MM-ATIPD").items()
    assert json_out(await orcon("inbox", "--as", "KH-AHTJP", "--wait", "1", "--json")) == []


async def test_send_sets_every_restriction_and_header_field(
        orcon: Orcon, tmp_path: Path) -> None:
    body = body_file(tmp_path, examples.information_request())
    sent = json_out(await orcon(
        "send", "--as", "TH-AHTD", "--body", body, "--to", "KH-AHTJP", "--category", "a",
        "--urgency", "urgent", "--urgency-reason", "risk_to_victim",
        "--purpose", "smuggling_of_migrants", "--condition", "Do not contact the employer",
        "--condition-lang", "en", "--consult-before-action", "--not-to-suspects",
        "--destroy-after-days", "30", "--not-before", "2026-01-01T00:00:00+00:00",
        "--expires-at", "2099-01-01T00:00:00+00:00", "--respond-by", "2099-02-01T00:00Z",
        "--route-country", "LA", "--nationality", "LA", "--transport-mode", "land",
        "--language", "en", "--evaluation", "B2", "--tlp", "AMBER", "--json"))
    assert sent["delivered"] == ["KH-AHTJP"], sent
    mid = sent["id"]
    shown = json_out(await orcon("show", mid, "--as", "KH-AHTJP", "--json"))
    h = shown["header"]
    r = h["restrictions"]
    assert h["urgency"] == "urgent" and h["urgency_reasons"] == ["risk_to_victim"]
    assert r["purposes"] == ["smuggling_of_migrants"] and r["tlp"] == "AMBER"
    assert r["conditions"] == [{"text": "Do not contact the employer", "lang": "en"}]
    assert r["consult_before_action"] and r["not_to_suspects"]
    assert r["destroy_after_days"] == 30
    assert r["not_before"].startswith("2026-01-01") and r["expires_at"].startswith("2099-01-01")
    assert h["topics"] == {"route_countries": ["LA"], "nationalities": ["LA"],
                           "transport_modes": ["land"]}
    assert h["languages"] == ["en"] and h["evaluation"] == {"source": "B", "accuracy": 2}
    assert shown["body"]["respond_by"].startswith("2099-02-01")
    assert shown["body"]["response_term"] == "by_date"
    # the effective restrictions, as they bind now, are given beside the signed header
    assert shown["restrictions"]["no_onward_dissemination"] is True  # TLP:AMBER's preset


async def test_respond_by_on_a_body_that_is_no_request_is_refused(
        orcon: Orcon, tmp_path: Path) -> None:
    body = body_file(tmp_path, examples.mekong_route_report())
    res = await orcon("send", "--as", "TH-AHTD", "--body", body, "--to", "KH-AHTJP",
                      "--respond-by", "2099-02-01T00:00Z")
    assert res.exit_code == 2, res.output
    assert "--respond-by" in res.output and "intel_report" in res.output


async def test_reply_goes_to_the_requester_in_reply_to_its_request(
        orcon: Orcon, tmp_path: Path) -> None:
    req = json_out(await orcon("send", "--as", "TH-AHTD", "--body",
                               body_file(tmp_path, examples.information_request()),
                               "--to", "KH-AHTJP", "--category", "a", "--json"))
    answer = body_file(tmp_path, examples.reply(), "reply.json")
    replied = json_out(await orcon("reply", req["id"], "--as", "KH-AHTJP", "--body", answer,
                                   "--json"))
    assert replied["delivered"] == ["TH-AHTD"], replied
    got = json_out(await orcon("show", replied["id"], "--as", "TH-AHTD", "--json"))
    assert got["header"]["in_reply_to"] == req["id"]
    assert got["header"]["thread"] == req["id"]
    rows = json_out(await orcon("list", "--as", "TH-AHTD", "--json"))
    mine = next(r for r in rows if r["id"] == req["id"])
    assert mine["direction"] == "out" and mine["answered"] is True
    # a reply to a message that is not in the store names the id
    unknown = await orcon("reply", "01JPA7Q5K3M4N5P6Q7R8S9T0VW", "--as", "KH-AHTJP",
                          "--body", answer)
    assert unknown.exit_code == 2 and "01JPA7Q5K3M4N5P6Q7R8S9T0VW" in unknown.output


async def test_list_filters_and_show_puts_restrictions_before_readable_sections(
        orcon: Orcon, tmp_path: Path) -> None:
    report = body_file(tmp_path, examples.mekong_route_report())
    alert = body_file(tmp_path, examples.arrest_alert(), "alert.json")
    first = json_out(await orcon("send", "--as", "TH-AHTD", "--body", report, "--to",
                                 "KH-AHTJP", "--category", "a", "--tlp", "AMBER",
                                 "--level", "CONFIDENTIAL", "--json"))
    second = json_out(await orcon("send", "--as", "TH-AHTD", "--body", alert, "--to",
                                  "KH-AHTJP", "--category", "a", "--urgency", "urgent",
                                  "--urgency-reason", "suspect_escaping", "--json"))
    rows = json_out(await orcon("list", "--as", "KH-AHTJP", "--json"))
    by_id = {r["id"]: r for r in rows}
    assert by_id[first["id"]]["state"] == "new" and by_id[first["id"]]["tlp"] == "AMBER"
    assert by_id[first["id"]]["level"] == "CONFIDENTIAL"
    assert by_id[second["id"]]["urgency"] == "urgent" and by_id[second["id"]]["kind"] == "alert"
    only = json_out(await orcon("list", "--as", "KH-AHTJP", "--kind", "alert", "--json"))
    assert [r["id"] for r in only] == [second["id"]]
    table = await orcon("list", "--as", "KH-AHTJP")
    assert table.exit_code == 0 and first["id"] in table.output and "AMBER" in table.output

    shown = await orcon("show", first["id"], "--as", "KH-AHTJP")
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert text.index("RESTRICTIONS") < text.index("Persons") < text.index("Family name: AUNG")
    assert '"family_name"' not in text and "{" not in text  # sections, not raw JSON
    assert "Family name" in text
    after = json_out(await orcon("list", "--as", "KH-AHTJP", "--json"))
    assert next(r for r in after if r["id"] == first["id"])["state"] == "acknowledged"
    assert json_out(await orcon("list", "--as", "KH-AHTJP", "--state", "new", "--json")) \
        == [r for r in after if r["id"] == second["id"]]
    missing = await orcon("show", "01JPA7Q5K3M4N5P6Q7R8S9T0VW", "--as", "KH-AHTJP", "--json")
    assert missing.exit_code == 2
    assert "01JPA7Q5K3M4N5P6Q7R8S9T0VW" in json.loads(missing.stderr)["error"]


async def test_whoami_and_agencies(orcon: Orcon) -> None:
    me = json_out(await orcon("whoami", "--as", "TH-AHTD", "--json"))
    assert me["agency"] == "TH-AHTD" and me["country"] == "TH"
    assert "COMMIT" in me["groups"] and me["signing_key"].startswith("ed25519:")
    assert me["clearance"] in {lvl.value for lvl in schemas.Level}
    text = await orcon("whoami", "--as", "TH-AHTD")
    assert text.exit_code == 0 and "TH-AHTD" in text.output
    everyone = json_out(await orcon("agencies", "--json"))
    kh = next(a for a in everyone if a["id"] == "KH-AHTJP")
    assert kh["country"] == "KH" and "COMMIT" in kh["groups"]
    assert any("auditor" in a["roles"] for a in everyone)
    unknown = await orcon("whoami", "--as", "TH-AHTX")
    assert unknown.exit_code == 2 and "TH-AHTD" in unknown.output  # names the valid ones


async def test_audit_events_lists_the_fetched_log_with_filters(
        orcon: Orcon, tmp_path: Path) -> None:
    body = body_file(tmp_path, examples.mekong_route_report())
    sent = json_out(await orcon("send", "--as", "TH-AHTD", "--body", body, "--category", "a",
                                "--audience", "COMMIT", "--exclude", "MM", "--json"))
    bundle = tmp_path / "audit"
    for _ in range(40):  # the sequencer appends asynchronously: fetch until it has
        fetched = await orcon("audit", "fetch", str(bundle))
        assert fetched.exit_code == 0, fetched.output
        events = json_out(await orcon("audit", "events", str(bundle), "--message",
                                      sent["id"], "--json", data_dir=False))
        types = {(e["type"], e.get("counterpart")) for e in events}
        if ("delivered", "KH-AHTJP") in types and ("submitted", None) in types:
            break
        await asyncio.sleep(0.25)
    assert ("submitted", None) in types and ("delivered", "KH-AHTJP") in types
    assert ("refused", "MM-ATIPD") in types
    assert all(e["message_id"] == sent["id"] for e in events)
    refused = json_out(await orcon("audit", "events", str(bundle), "--kind", "refused",
                                   "--agency", "MM-ATIPD", "--json", data_dir=False))
    assert refused and all(e["type"] == "refused" for e in refused)
    assert all("MM-ATIPD" in (e["actor"], e.get("counterpart")) for e in refused)
    assert json_out(await orcon("audit", "events", str(bundle), "--until",
                                "2000-01-01T00:00Z", "--json", data_dir=False)) == []
    table = await orcon("audit", "events", str(bundle), "--message", sent["id"],
                        data_dir=False)
    assert table.exit_code == 0 and "restriction.exclude" in table.output
    verified = await orcon("audit", "verify", str(bundle), data_dir=False)
    assert verified.exit_code == 0, verified.output
    for word in ("entries", "hash chain", "signed heads", "consistency", "root"):
        assert word in verified.output, verified.output
    doc = json_out(await orcon("audit", "verify", str(bundle), "--json", data_dir=False))
    assert doc["ok"] is True and doc["entries"] >= 3 and len(doc["root"]) == 64
    assert "consistency_proofs" in doc


async def test_life_cycle_commands_answer_in_json_and_list_shows_the_state(
        orcon: Orcon, tmp_path: Path) -> None:
    body = body_file(tmp_path, examples.mekong_route_report())
    sent = json_out(await orcon("send", "--as", "TH-AHTD", "--body", body, "--to",
                                "KH-AHTJP", "--category", "a", "--no-evidential-use",
                                "--purpose", "smuggling_of_migrants", "--json"))
    mid = sent["id"]
    used = json_out(await orcon("use", mid, "--as", "KH-AHTJP", "--purpose",
                                "smuggling_of_migrants", "--json"))
    assert used["message_id"] == mid and used["act"] == "use_declaration"
    rows = json_out(await orcon("list", "--as", "KH-AHTJP", "--json"))
    assert next(r for r in rows if r["id"] == mid)["state"] == "used"
    refused = await orcon("use", mid, "--as", "KH-AHTJP", "--purpose",
                          "smuggling_of_migrants", "--evidential", "--json")
    assert refused.exit_code == 2
    assert "restriction.no_evidential_use" in json.loads(refused.stderr)["error"]
    asked = json_out(await orcon("consent", "request", mid, "--as", "KH-AHTJP", "--action",
                                 "evidential_use", "--justification", "trial", "--json"))
    assert asked["act"] == "consent_request"
    rows = json_out(await orcon("list", "--as", "KH-AHTJP", "--json"))
    assert next(r for r in rows if r["id"] == mid)["state"] == "consent pending"
    reqs = json_out(await orcon("requests", "--as", "TH-AHTD", "--json"))
    assert isinstance(reqs, list)
