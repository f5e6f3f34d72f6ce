"""Which event loop the long-running services use: asyncio's, or uvloop's when
`ORCON_UVLOOP=1` (measured in docs/bench.md; off by default so that the reference
figures and every test run on the standard library's loop)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

ENV = "ORCON_UVLOOP"


def uvloop_enabled() -> bool:
    return os.environ.get(ENV, "") == "1"


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, on uvloop when the switch is on."""
    if uvloop_enabled():
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
