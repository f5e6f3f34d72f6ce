"""`orcon inbox` takes the path every other command takes (`with_holder`): with --json
its stdout is one JSON document and everything on stderr is JSON too (a failure as
`{"error", "exit"}`, a refused delivery as a `rejected` notice), and a refused delivery
is reported, never dropped. Real `orcon` commands, nats-server and broker."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from broker.hosting.stack import DevStack
from tests.support.cli import Orcon, cli, json_out
from transport import subjects as s

WATCH = {"Orcon-Watch": "-"}  # as the broker labels a delivery (broker/routing/acks.py)


def _stderr_objects(stderr: str) -> list[dict[str, Any]]:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    return [json.loads(ln) for ln in lines]  # every line is a JSON object, or this fails


async def test_inbox_json_reports_a_refused_delivery_as_json(
        stack: DevStack, orcon: Orcon) -> None:
    nc = await stack.broker_connection("test-forger")
    try:
        await nc.jetstream().publish(s.deliver("KH-AHTJP"), b"not an orcon message",
                                     headers={**WATCH, "Nats-Msg-Id": "forged-1"})
    finally:
        await nc.close()
    got = await orcon("inbox", "--as", "KH-AHTJP", "--wait", "1", "--json")
    assert json_out(got) == []
    notes = _stderr_objects(got.stderr)
    rejected = [n for n in notes if n.get("notice") == "rejected"]
    assert len(rejected) == 1 and rejected[0]["reason"], notes
    # Reported once, and the delivery is handled: the next inbox is quiet.
    again = await orcon("inbox", "--as", "KH-AHTJP", "--wait", "0.5", "--json")
    assert json_out(again) == [] and _stderr_objects(again.stderr) == []


async def test_inbox_json_failure_is_one_json_object(stack: DevStack, tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    stale.mkdir()
    conn = json.loads((stack.data_dir / "connection.json").read_text())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn["url"], conn["ca"] = f"nats://127.0.0.1:{port}", None
    (stale / "connection.json").write_text(json.dumps(conn))
    got = await cli(stack)("inbox", "--as", "KH-AHTJP", "--json", "-d", str(stale),
                           data_dir=False)
    assert got.exit_code == 3 and got.stdout == ""
    [doc] = _stderr_objects(got.stderr)
    assert doc["exit"] == 3 and str(port) in doc["error"]
