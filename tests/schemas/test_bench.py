from __future__ import annotations

from bench.decode import measure


def test_measure_reports_rates() -> None:
    result = measure(0.1)
    assert result["decode_validate_per_s"] > 0
    assert result["decode_only_per_s"] >= result["decode_validate_per_s"] * 0.5
    assert result["body_bytes"] > 1500
