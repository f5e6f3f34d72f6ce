"""What time it is, for every layer: the type of an injected clock and the one default.

The rule: pure functions take `now`; services (brokers, the sequencer, watchers, the
SDK's clients) take a `Clock`, so tests can set time instead of sleeping through it.
Only a program's entry point (a CLI command, a service's assembly) picks `utcnow`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The wall clock, timezone-aware (UTC): the default `Clock`."""
    return datetime.now(UTC)
