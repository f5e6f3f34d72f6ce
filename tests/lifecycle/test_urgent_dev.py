"""Issue 15: urgent messages not acknowledged are re-notified in `orcon dev` too, with the
timeout configurable. A real `orcon dev` process (its own nats-server and broker); the
recipient fetches without opening, the watcher re-notifies it, and both sides' `orcon
inbox` say so."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from clients.sdk.holder import Holder
from schemas import Category, Level, Urgency, examples
from schemas.codes import UrgencyReason
from transport.connection import load_connection

ORCON = str(Path(sys.executable).parent / "orcon")
PASS = "correct horse battery staple"


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ORCON, *args], env=env, capture_output=True, text=True,
                          timeout=60)


async def test_orcon_dev_renotifies_unacknowledged_urgent_messages(tmp_path: Path) -> None:
    data = tmp_path / "fed"
    env = {**os.environ, "ORCON_PASSPHRASE": PASS, "COLUMNS": "250"}
    dev = subprocess.Popen([ORCON, "dev", "--data-dir", str(data), "--no-tls",
                            "--urgent-ack-timeout", "2"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # connection.json is written before the brokers subscribe; `orcon dev` says so
        # once they have, and a loaded machine can take seconds between the two.
        assert dev.stdout is not None
        said = ""
        deadline = time.monotonic() + 60
        while "orcon dev: NATS at" not in said and time.monotonic() < deadline:
            line = await asyncio.to_thread(dev.stdout.readline)
            assert line or dev.poll() is None, said
            said += line.decode()
        th = await Holder.open_for(load_connection(data), "TH-AHTD",
                                   data / "stores" / "TH-AHTD.db", passphrase=PASS)
        try:
            sent = await th.send(examples.arrest_alert(), category=Category.GROUPS,
                                 level=Level.RESTRICTED, to=["KH-AHTJP"],
                                 urgency=Urgency.URGENT,
                                 urgency_reasons=[UrgencyReason.RISK_TO_VICTIM])
            await th.wait_outcome(sent.id)
        finally:
            await th.close()
        d = str(data)
        fetched = await asyncio.to_thread(_run, env, "purge", "-d", d, "--as", "KH-AHTJP")
        assert fetched.returncode == 0, fetched.stderr
        assert "1 new message" in fetched.stderr, fetched.stderr

        # The reminder arrives after the 2 s timeout; keep fetching without opening.
        reminded = ""
        for _ in range(20):
            await asyncio.sleep(0.5)
            again = await asyncio.to_thread(_run, env, "inbox", "-d", d, "--as", "TH-AHTD",
                                            "--wait", "0.3")
            assert again.returncode == 0, again.stderr
            reminded += again.stdout
            if "not acknowledged" in reminded:
                break
        assert f"not acknowledged: your urgent message {sent.id} by KH-AHTJP" in reminded, \
            reminded
        await asyncio.to_thread(_run, env, "purge", "-d", d, "--as", "KH-AHTJP")
        kh = await asyncio.to_thread(_run, env, "inbox", "-d", d, "--as", "KH-AHTJP")
        assert kh.returncode == 0, kh.stderr
        assert f"reminder: urgent message {sent.id} re-notified" in kh.stdout, kh.stdout
    finally:
        dev.send_signal(signal.SIGINT)
        code = dev.wait(30)
    assert code == 0
