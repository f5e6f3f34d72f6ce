"""Fixtures for the console tests: `orcon console` processes against the real stack, and
Playwright driving Debian's Chromium (/usr/bin/chromium, installed by `make test` through
scripts/install-chromium.sh; Playwright's own browser download is never used)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from broker.hosting.stack import DevStack
from tests.support.console import RunningConsole

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parent / "artifacts"
URL = re.compile(r"orcon console for (\S+): (http://127\.0\.0\.1:\d+)/login\?token=(\S+)")


ConsoleFactory = Callable[[str], Awaitable[RunningConsole]]


@pytest.fixture
async def console(stack: DevStack) -> AsyncIterator[ConsoleFactory]:
    """`await console("TH-AHTD")`: a real `orcon console` process on a free port."""
    started: list[RunningConsole] = []

    async def start(agency: str) -> RunningConsole:
        env = {**os.environ, "ORCON_PASSPHRASE": stack.passphrase()}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "clients.cli.main", "console", "--data-dir", str(stack.data_dir),
            "--as", agency, "--port", "0", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env)
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        except TimeoutError:
            proc.kill()
            raise
        m = URL.search(line.decode())
        if m is None:
            err = await proc.stderr.read() if proc.stderr else b""
            raise AssertionError(f"console for {agency} did not start: {line!r} {err!r}")
        c = RunningConsole(m.group(1), m.group(2), m.group(3), proc)
        started.append(c)
        return c

    yield start
    for c in started:
        if c.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                c.proc.send_signal(signal.SIGTERM)
    for c in started:
        try:
            await asyncio.wait_for(c.proc.communicate(), timeout=10)
        except TimeoutError:
            c.proc.kill()
            await c.proc.wait()


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("chromium is not installed: run scripts/install-chromium.sh")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
