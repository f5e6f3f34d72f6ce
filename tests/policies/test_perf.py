"""The benchmark runs and reports every figure `orcon bench` shows."""

from __future__ import annotations

from bench.policy_perf import big_federation, measure


def test_big_federation_shape() -> None:
    fed = big_federation()
    assert len(fed.agencies) == 195


def test_measure_smoke() -> None:
    m = measure(seconds=0.05)
    assert set(m) == {"decisions_per_s", "decisions_per_s_cached", "fanout_195_ms",
                      "fanout_195_p99_ms", "recipients"}
    assert m["recipients"] == 195
    assert all(v > 0 for v in m.values())
