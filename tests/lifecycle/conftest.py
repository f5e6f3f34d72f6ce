"""Fixtures for the life-cycle tests (`holder` and `audit` come from tests/conftest.py):
`sync_until(holder, pred)` syncs until what has arrived satisfies `pred`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from clients.sdk.holder import Holder, SyncResult


async def _sync_until(h: Holder, pred: Callable[[SyncResult], bool],
                     timeout: float = 8.0) -> SyncResult:
    """Sync until `pred` holds for what has arrived (accumulated), or fail."""
    total = SyncResult()
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        got = await h.sync(timeout=0.5)
        total.new += got.new
        total.reminders += got.reminders
        total.rejected += got.rejected
        if pred(total):
            return total
    raise AssertionError(f"{h.agency}: condition not met; got {total}")


@pytest.fixture
def sync_until() -> Callable[..., Awaitable[SyncResult]]:
    return _sync_until
