"""The passphrase that encrypts a development stack's keys never touches disk: not the
one given in ORCON_PASSPHRASE to `orcon dev`, not the random one of a throwaway stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from broker.hosting.stack import DevStack
from tests.support.paths import SAMPLE_FEDERATION as SAMPLE
from transport.connection import load_connection

ORCON = str(Path(sys.executable).parent / "orcon")


def files_containing(root: Path, needle: bytes) -> list[Path]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
            hits.append(path)
    return hits


def test_orcon_dev_never_writes_orcon_passphrase(tmp_path: Path) -> None:
    data = tmp_path / "fed"
    secret = "orcon-dev passphrase 7f3c9e1a under test"
    env = {**os.environ, "ORCON_PASSPHRASE": secret}
    dev = subprocess.Popen([ORCON, "dev", "--data-dir", str(data), "--no-tls"], env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    try:
        conn = data / "connection.json"
        deadline = time.monotonic() + 60
        while not conn.exists() and time.monotonic() < deadline:
            assert dev.poll() is None, dev.stdout.read().decode() if dev.stdout else ""
            time.sleep(0.1)
        assert conn.exists()
        time.sleep(0.5)  # the sequencer and watchers have started
        assert json.loads(conn.read_text())["passphrase_file"] is None
        # Another process finds the keys with the same ORCON_PASSPHRASE.
        shown = subprocess.run([ORCON, "inbox", "-d", str(data), "--as", "KH-AHTJP", "--json",
                                "--wait", "0.2"], env=env, capture_output=True, text=True,
                               timeout=60)
        assert shown.returncode == 0, shown.stderr
    finally:
        dev.send_signal(signal.SIGINT)
        assert dev.wait(30) == 0
    assert (data / "keys" / "root.key").is_file()  # the keys exist, encrypted
    assert files_containing(tmp_path, secret.encode()) == []


def test_orcon_dev_without_a_passphrase_refuses_to_invent_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ORCON_PASSPHRASE"}
    out = subprocess.run([ORCON, "dev", "--data-dir", str(tmp_path / "fed")], env=env,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "ORCON_PASSPHRASE" in out.stdout + out.stderr
    assert not (tmp_path / "fed" / "keys").exists()


async def test_throwaway_stack_keeps_its_random_passphrase_in_memory(
    tmp_path: Path, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.delenv("ORCON_PASSPHRASE", raising=False)
    async with DevStack(tmp_path / "s", SAMPLE, brokers=0, fast_kdf=True) as st:
        secret = st.passphrase()
        assert len(secret) >= 24
        assert load_connection(tmp_path / "s").passphrase_file is None
        assert files_containing(tmp_path, secret.encode()) == []
