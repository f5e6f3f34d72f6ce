"""Issue 15 item 3: the sender keeps a copy of everything it sends from the CLI (header,
body, outcome per recipient) in its encrypted store, so every command that needs the
original works for CLI-sent messages. Real nats-server and broker (DevStack)."""

from __future__ import annotations

from pathlib import Path

from broker.hosting.stack import DevStack
from schemas import examples
from tests.support.cli import body_file, cli_store, message_id, orcon


async def test_cli_sent_request_is_tracked_by_the_requester(stack: DevStack,
                                                            tmp_path: Path) -> None:
    body = body_file(tmp_path, examples.information_request())
    sent = await orcon(stack, "send", "--as", "TH-AHTD", "--body", body, "--to", "KH-AHTJP",
                       "--category", "a")
    assert sent.exit_code == 0, sent.output
    mid = message_id(sent.output)
    reqs = await orcon(stack, "requests", "--as", "TH-AHTD")
    assert reqs.exit_code == 0, reqs.output
    assert mid in reqs.output and "KH-AHTJP" in reqs.output, reqs.output


async def test_originator_grants_consent_for_a_cli_sent_message(stack: DevStack,
                                                              tmp_path: Path) -> None:
    body = body_file(tmp_path, examples.mekong_route_report())
    sent = await orcon(stack, "send", "--as", "TH-AHTD", "--body", body, "--to", "KH-AHTJP",
                       "--category", "a", "--no-onward-dissemination")
    assert sent.exit_code == 0, sent.output
    mid = message_id(sent.output)
    asked = await orcon(stack, "consent", "request", mid, "--as", "KH-AHTJP",
                        "--action", "onward_dissemination", "--to", "VN-MPS",
                        "--justification", "joint investigation with Viet Nam")
    assert asked.exit_code == 0, asked.output
    request_id = message_id(asked.output, "consent requested")
    granted = await orcon(stack, "consent", "grant", request_id, "--as", "TH-AHTD")
    assert granted.exit_code == 0, granted.output
    assert "consent granted" in granted.output
    assert "not-originator" not in granted.output


async def test_sender_store_holds_header_body_and_outcome_per_recipient(
        stack: DevStack, tmp_path: Path) -> None:
    report = examples.mekong_route_report()
    body = body_file(tmp_path, report)
    sent = await orcon(stack, "send", "--as", "TH-AHTD", "--body", body, "--audience",
                       "COMMIT", "--exclude", "MM", "--category", "a")
    assert sent.exit_code == 0, sent.output
    mid = message_id(sent.output)
    store = cli_store(stack, "TH-AHTD")
    try:
        row = store.get(mid)
        assert row is not None, "the sender kept no copy"
        assert row.direction == "out" and row.sender == "TH-AHTD"
        assert row.body == report
        assert "KH-AHTJP" in row.header.recipients
        outcome = row.record.outcome
        assert outcome is not None, "the broker's outcome was not kept"
        assert "KH-AHTJP" in outcome.delivered and "MM-ATIPD" not in outcome.delivered
        refused = {r.recipient: r.rule for r in [*row.record.refused, *outcome.refused]}
        assert refused.get("MM-ATIPD") == "restriction.exclude", refused
    finally:
        store.close()
