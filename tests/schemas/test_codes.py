from __future__ import annotations

from schemas.iso import COUNTRIES, ISO639_1, ISO3166_ALPHA2


def test_code_sets_are_complete_and_real() -> None:
    assert len(ISO3166_ALPHA2) == 249
    assert {"TH", "LA", "MM", "KH", "VN", "CN", "LK", "AU"} <= ISO3166_ALPHA2
    assert "UK" not in ISO3166_ALPHA2 and "XK" in COUNTRIES and "XK" not in ISO3166_ALPHA2
    assert len(ISO639_1) == 184
    assert {"th", "lo", "my", "km", "vi", "zh", "en"} <= ISO639_1


def test_a_message_id_needs_an_aware_time() -> None:
    """A naive time would be read as the machine's local time: ids would sort wrongly."""
    from datetime import UTC, datetime

    import pytest

    from schemas.ids import message_id_time, new_message_id

    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert message_id_time(new_message_id(at)) == at
    with pytest.raises(ValueError, match="timezone-aware"):
        new_message_id(datetime(2026, 1, 1, 12))
