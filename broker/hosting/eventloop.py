"""How a long-running service process runs: on asyncio's event loop, or uvloop's when
`ORCON_UVLOOP=1` (measured in docs/bench.md; off by default so that the reference
figures and every test run on the standard library's loop), with a heap settled once it has
started (`settle_heap`)."""

from __future__ import annotations

import asyncio
import gc
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


def settle_heap() -> tuple[int, int, int]:
    """Called once a service has loaded what it keeps for its life (federation, Cedar
    policies, key directory, connections). Those objects leave the cycle collector's
    view (`gc.freeze`), so a full collection no longer walks them, and young collections
    come every 10,000 allocations instead of 700. A full collection of a started broker
    paused routing for 30–70 ms, which is what a tail latency at 1,000 msg/s is made of
    (docs/bench.md). Garbage is still freed by reference counting; cycles created later
    are still collected. Returns the thresholds before, for `unsettle_heap`."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    return before


def unsettle_heap(thresholds: tuple[int, int, int]) -> None:
    """Undo `settle_heap` (a benchmark that settles its load generator's heap for one
    run, in a process that goes on)."""
    gc.unfreeze()
    gc.set_threshold(*thresholds)
