"""The CLI as a person uses it: `orcon demo`, and `orcon dev` in one process with
`orcon send` / `orcon inbox` in others, stopped with Ctrl-C, leaving no process behind."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
from rich.console import Console

from clients.cli.demo import run_demo
from schemas import examples

ORCON = str(Path(sys.executable).parent / "orcon")


async def test_demo_transcript_shows_deliveries_and_explained_refusals(tmp_path: Path) -> None:
    out = io.StringIO()
    counts = await run_demo(Console(file=out, width=120), tmp_path / "demo")
    text = out.getvalue()
    assert counts["delivered"] >= 1 and counts["refused"] >= 1 and counts["opened"] >= 1
    assert "restriction.exclude" in text and "excluded by the sender" in text
    assert "default.no-basis" in text and "no legal basis" in text
    assert "ORIGINATOR'S RESTRICTIONS" in text
    assert "permissions violation" in text


def _children_named(name: str, parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if comm == name and ppid == parent:
            found.append(int(entry.name))
    return found


def test_dev_send_inbox_and_clean_shutdown(tmp_path: Path) -> None:
    data = tmp_path / "fed"
    env = {**os.environ, "ORCON_PASSPHRASE": "correct horse battery staple"}
    dev = subprocess.Popen([ORCON, "dev", "--data-dir", str(data)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        conn = data / "connection.json"
        deadline = time.monotonic() + 60
        while not conn.exists() and time.monotonic() < deadline:
            assert dev.poll() is None, dev.stdout.read().decode() if dev.stdout else ""
            time.sleep(0.1)
        assert conn.exists()
        assert json.loads(conn.read_text())["url"].startswith(("nats://", "tls://"))
        nats_pids = _children_named("nats-server", dev.pid)
        assert len(nats_pids) == 1

        body = tmp_path / "report.json"
        body.write_bytes(msgspec.json.encode(examples.mekong_route_report()))
        sent = subprocess.run(
            [ORCON, "send", "-d", str(data), "--as", "TH-AHTD", "--body", str(body),
             "--category", "a", "--level", "CONFIDENTIAL", "--audience", "COMMIT",
             "--exclude", "MM", "--no-onward-dissemination"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        assert "delivered to:" in sent.stdout and "KH-AHTJP" in sent.stdout
        assert "MM-ATIPD" in sent.stdout and "excluded" in sent.stdout

        inbox = subprocess.run([ORCON, "inbox", "-d", str(data), "--as", "KH-AHTJP", "--json"],
                               env=env, capture_output=True, text=True, timeout=60)
        assert inbox.returncode == 0, inbox.stderr
        got = json.loads(inbox.stdout)
        assert len(got) == 1
        assert got[0]["header"]["restrictions"]["no_onward_dissemination"] is True
        assert got[0]["body"]["title"] == examples.mekong_route_report().title

        excluded = subprocess.run([ORCON, "inbox", "-d", str(data), "--as", "MM-ATIPD",
                                   "--json", "--wait", "0.5"],
                                  env=env, capture_output=True, text=True, timeout=60)
        assert excluded.returncode == 0 and json.loads(excluded.stdout) == []
    finally:
        dev.send_signal(signal.SIGINT)
        code = dev.wait(30)
    assert code == 0
    for pid in nats_pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
