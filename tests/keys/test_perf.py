"""bench.keys_perf produces sane figures (tiny budgets: this checks shape, not speed)."""

from __future__ import annotations

import shutil

import pytest

import schemas
from bench import keys_perf as perf


def test_measure_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(perf, "RECIPIENT_COUNTS", (1, 3))
    out = perf.measure(seconds=0.0)
    for suite in ("x25519", "mlkem768x25519"):
        for n in (1, 3):
            ms, ops = out[f"seal_{suite}_{n}_ms"], out[f"seal_{suite}_{n}_ops"]
            assert ms > 0 and ops == pytest.approx(1000 / ms)
        assert out[f"open_{suite}_ms"] > 0 and out[f"open_envelope_{suite}_ms"] > 0


def test_the_benchmarks_body_is_a_valid_body_of_the_size_asked() -> None:
    for size in (600, 1024, 1500):
        assert len(schemas.encode(perf.body_of(size))) == size


@pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg not installed")
def test_measure_gpg() -> None:
    assert perf.measure_gpg(recipients=2, seconds=0.0) > 0
