"""ReplayGuard with an injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from keyhelpers import NOW

from keys.envelope import ReplayGuard
from keys.errors import KeysError, ReplayError


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t


def test_duplicate_refused() -> None:
    guard = ReplayGuard(timedelta(hours=1), Clock(NOW))
    guard.check("M1", NOW)
    guard.check("M2", NOW)
    with pytest.raises(ReplayError, match="already seen"):
        guard.check("M1", NOW)
    assert issubclass(ReplayError, KeysError)


def test_window_edges() -> None:
    clock = Clock(NOW)
    guard = ReplayGuard(timedelta(hours=1), clock, max_skew=timedelta(minutes=5))
    guard.check("edge-old", NOW - timedelta(hours=1))
    with pytest.raises(ReplayError, match="before window"):
        guard.check("too-old", NOW - timedelta(hours=1, microseconds=1))
    guard.check("edge-new", NOW + timedelta(minutes=5))
    with pytest.raises(ReplayError, match="future"):
        guard.check("too-new", NOW + timedelta(minutes=5, microseconds=1))
    clock.t = NOW + timedelta(hours=2)  # time passes: an old, once-valid message is stale
    with pytest.raises(ReplayError):
        guard.check("late", NOW)


def test_refused_message_is_not_remembered() -> None:
    clock = Clock(NOW)
    guard = ReplayGuard(timedelta(hours=1), clock)
    with pytest.raises(ReplayError):
        guard.check("M", NOW + timedelta(hours=1))
    clock.t = NOW + timedelta(hours=1)
    guard.check("M", NOW + timedelta(hours=1))  # now in the window, and never seen


def test_memory_is_pruned() -> None:
    clock = Clock(NOW)
    guard = ReplayGuard(timedelta(minutes=1), clock)
    for i in range(5000):
        clock.t = NOW + timedelta(seconds=i)
        guard.check(f"M{i}", clock.t)
    assert len(guard._seen) < 1100
    with pytest.raises(ReplayError):
        guard.check("M4999", clock.t)
