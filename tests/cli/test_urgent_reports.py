"""Urgent messages not acknowledged, as `orcon inbox` shows them: a reminder counts only
when it is the AckWatcher's (`Orcon-Watch: reminder <id> <n>`), once however often it is
redelivered; a plain redelivery (at least once) is no reminder. An "unacknowledged"
report is recorded only for a recipient the message was delivered to: one naming a
party that never had it is not shown to the sender as a fact. Real `orcon` commands,
nats-server and broker; the deliveries and the report are published as the broker and
the watcher would, with the brokers' credentials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from broker.hosting.stack import DevStack
from broker.routing import acks
from clients.sdk import holder
from schemas import Outcome, Refusal, encode, examples
from tests.support.cli import Orcon, body_file, cli_store, json_out
from transport import subjects as s

TH, KH, MM = "TH-AHTD", "KH-AHTJP", "MM-ATIPD"


def test_the_sdk_reads_the_label_the_broker_writes() -> None:
    assert holder.WATCH_HEADER == acks.WATCH_HEADER


async def _urgent(orcon: Orcon, tmp_path: Path) -> str:
    body = body_file(tmp_path, examples.arrest_alert())
    sent = json_out(await orcon("send", "--as", TH, "--body", body, "--to", KH,
                                "--category", "a", "--urgency", "urgent",
                                "--urgency-reason", "suspect_escaping", "--json"))
    return str(sent["id"])


async def _publish(stack: DevStack, subject: str, data: bytes, label: str | None,
                   msg_id: str) -> None:
    nc = await stack.broker_connection("test-watcher")
    try:
        headers = {"Nats-Msg-Id": msg_id}
        if label is not None:
            headers[acks.WATCH_HEADER] = label
        await nc.jetstream().publish(subject, data, headers=headers)
    finally:
        await nc.close()


def _inbox_doc(result: Any, mid: str) -> dict[str, Any]:
    return next(d for d in json_out(result) if d["header"]["id"] == mid)


async def test_only_the_watchers_reminders_count_once_each(
        stack: DevStack, orcon: Orcon, tmp_path: Path) -> None:
    mid = await _urgent(orcon, tmp_path)
    assert (await orcon("list", "--as", KH, "--json")).exit_code == 0  # fetched, not opened
    store = cli_store(stack, KH)
    try:
        row = store.get(mid)
        assert row is not None
        data, created = row.record.envelope, row.header.created_at.isoformat()
    finally:
        store.close()
    subject = s.deliver(KH)
    # At-least-once redeliveries, labelled as the first delivery was: no reminder.
    for i in range(2):
        await _publish(stack, subject, data, f"urgent {mid} {TH} {created}", f"{mid}:again:{i}")
    # The watcher's first reminder, delivered twice (its ack lost), and a label that
    # names another message: one reminder.
    for i in range(2):
        await _publish(stack, subject, data, f"reminder {mid} 1", f"{mid}:reminder:1:{i}")
    await _publish(stack, subject, data, "reminder 01JPA7Q5K3M4N5P6Q7R8S9T0VW 2", f"{mid}:x")
    doc = _inbox_doc(await orcon("inbox", "--as", KH, "--wait", "1", "--json"), mid)
    assert doc["reminders"] == 1


async def test_an_unacknowledged_report_about_a_party_that_never_had_it_is_not_shown(
        stack: DevStack, orcon: Orcon, tmp_path: Path) -> None:
    mid = await _urgent(orcon, tmp_path)
    assert (await orcon("inbox", "--as", TH, "--wait", "0.5", "--json")).exit_code == 0
    report = Outcome(message_id=mid, sender=TH, status="unacknowledged", refused=[
        Refusal(MM, "ack.overdue", f"{MM} has not acknowledged this urgent message")])
    await _publish(stack, s.report(TH), encode(report), None, f"{mid}:forged")
    got = await orcon("inbox", "--as", TH, "--wait", "0.5", "--json")
    assert not [d for d in json_out(got) if d["header"]["id"] == mid], got.stdout
    # The same report about the recipient it was delivered to is shown.
    true = Outcome(message_id=mid, sender=TH, status="unacknowledged", refused=[
        Refusal(KH, "ack.overdue", f"{KH} has not acknowledged this urgent message")])
    await _publish(stack, s.report(TH), encode(true), None, f"{mid}:true")
    doc = _inbox_doc(await orcon("inbox", "--as", TH, "--wait", "0.5", "--json"), mid)
    assert [o["recipient"] for o in doc["overdue"]] == [KH], json.dumps(doc)
