from __future__ import annotations

from schemas.iso import COUNTRIES, ISO639_1, ISO3166_ALPHA2


def test_code_sets_are_complete_and_real() -> None:
    assert len(ISO3166_ALPHA2) == 249
    assert {"TH", "LA", "MM", "KH", "VN", "CN", "LK", "AU"} <= ISO3166_ALPHA2
    assert "UK" not in ISO3166_ALPHA2 and "XK" in COUNTRIES and "XK" not in ISO3166_ALPHA2
    assert len(ISO639_1) == 184
    assert {"th", "lo", "my", "km", "vi", "zh", "en"} <= ISO639_1
