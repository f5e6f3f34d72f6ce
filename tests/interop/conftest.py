"""Fixtures for the interop tests (`holder` and `audit` come from tests/conftest.py):
`sync_until(holder, message_id)` waits for one message in a holder's store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from clients.sdk.holder import Holder


async def _sync_until(h: Holder, message_id: str, timeout: float = 8.0) -> None:
    """Sync until `message_id` is in `h`'s store, or fail."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        await h.sync(timeout=0.5)
        if h.store.get(message_id) is not None:
            return
    raise AssertionError(f"{h.agency}: {message_id} did not arrive")


@pytest.fixture
def sync_until() -> Callable[..., Awaitable[None]]:
    return _sync_until
