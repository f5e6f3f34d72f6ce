"""Errors are one line that says what to do (issue 16): a stopped stack fails fast
naming its URL, a data directory in use refuses a second `orcon dev`, and the README's
session by hand works when pasted. Real `orcon` processes and nats-servers."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from broker.hosting.stack import DevStack

ORCON = str(Path(sys.executable).parent / "orcon")
REPO = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_stopped_stack_fails_fast_with_one_line_naming_the_url(
        stack: DevStack, tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    stale.mkdir()
    conn = json.loads((stack.data_dir / "connection.json").read_text())
    url = f"nats://127.0.0.1:{_closed_port()}"
    conn["url"] = url
    conn["ca"] = None
    (stale / "connection.json").write_text(json.dumps(conn))
    env = {**os.environ, "ORCON_PASSPHRASE": stack.passphrase()}
    for argv in (["inbox", "--as", "KH-AHTJP"],
                 ["list", "--as", "TH-AHTD"], ["audit", "fetch", str(tmp_path / "audit")]):
        # Bounded: the old code retried for 30 s, printing tracebacks.
        done = subprocess.run([ORCON, *argv, "-d", str(stale)], env=env, capture_output=True,
                              text=True, timeout=20)
        assert done.returncode == 3, (argv, done.stderr)
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, (argv, done.stderr)
        assert url in lines[0] and "orcon dev" in lines[0], lines
        assert "Traceback" not in done.stderr + done.stdout


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def test_a_second_dev_on_a_directory_in_use_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "fed"
    data.mkdir()
    env = {**os.environ, "ORCON_PASSPHRASE": "correct horse battery staple"}
    # A lock left by a process that no longer exists is stale: it does not block.
    gone = subprocess.Popen(["true"])
    gone.wait()
    (data / "orcon-dev.lock").write_text(f"{gone.pid}\n")
    first = subprocess.Popen([ORCON, "dev", "--data-dir", str(data)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for(data / "connection.json", first)
        assert (data / "orcon-dev.lock").read_text().split() == [str(first.pid)]
        second = subprocess.run([ORCON, "dev", "--data-dir", str(data)], env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1, second.stderr
        assert str(first.pid) in second.stderr and "in use" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # the running stack is untouched
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=60)
    assert first.returncode == 0
    assert not (data / "orcon-dev.lock").exists()  # released on exit


def _readme_session() -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(r"A session by hand[^\n]*\n\n```sh\n(.*?)```", text, re.S)
    assert m, "README.md has no 'A session by hand' block"
    return m.group(1)


def test_the_readme_session_works_when_pasted(tmp_path: Path) -> None:
    script = _readme_session()
    assert "orcon wait" in script  # the stack is waited for, not raced
    # The block as a person pastes it, with its paths moved into this test's directory
    # and `.venv/bin/` pointing at the environment running the tests.
    script = script.replace("/tmp/", f"{tmp_path}/").replace(
        ".venv/bin/", f"{Path(sys.executable).parent}/")
    shutil.rmtree(tmp_path / "fed", ignore_errors=True)
    done = subprocess.run(["bash", "-e", "-c", script + "\nwait\n"], cwd=REPO,
                          capture_output=True, text=True, timeout=240,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "delivered to:" in done.stdout and "KH-AHTJP" in done.stdout, done.stdout
    assert "ORIGINATOR'S RESTRICTIONS" in done.stdout  # the inbox shows the message
    assert "OK" in done.stdout and "consistency" in done.stdout, done.stdout
    assert not (tmp_path / "fed" / "orcon-dev.lock").exists()  # `kill %1` stopped it


async def test_a_wrong_passphrase_is_one_line_and_exit_2(stack: DevStack) -> None:
    env = {**os.environ, "ORCON_PASSPHRASE": "not the passphrase"}
    done = subprocess.run([ORCON, "list", "--as", "TH-AHTD", "-d", str(stack.data_dir)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "passphrase" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_wait_for_a_stack_that_never_comes_exits_3(tmp_path: Path) -> None:
    done = subprocess.run([ORCON, "wait", "-d", str(tmp_path / "nothing"), "--timeout", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "orcon dev" in lines[0], done.stderr
