"""`tightest`: a forwarded copy bound by both the forwarder's tightening and the
originator's amendment keeps the tighter of each field, never looser than either."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clients.sdk.holder import tightest
from policies.acts import loosened_fields
from schemas import TLP, Condition, Purpose, Restrictions

T = datetime(2026, 1, 1, tzinfo=UTC)


def test_tightest_is_never_looser_than_either() -> None:
    forwarder = Restrictions(purposes=[Purpose.SMUGGLING_OF_MIGRANTS, Purpose.INVESTIGATION],
                             exclude=["CN"], expires_at=T + timedelta(days=9),
                             release_to=["KH", "VN"], tlp=TLP.AMBER,
                             conditions=[Condition("no press", "en")])
    amendment = Restrictions(purposes=[Purpose.SMUGGLING_OF_MIGRANTS], exclude=["MM"],
                             expires_at=T + timedelta(days=20), no_evidential_use=True,
                             destroy_after_days=5, tlp=TLP.GREEN, not_before=T)
    both = tightest(forwarder, amendment)
    assert loosened_fields(forwarder, both) == []
    assert loosened_fields(amendment, both) == []
    assert both.purposes == [Purpose.SMUGGLING_OF_MIGRANTS]
    assert both.exclude == ["CN", "MM"] and both.release_to == ["KH", "VN"]
    assert both.expires_at == T + timedelta(days=9) and both.destroy_after_days == 5
    assert both.no_evidential_use and both.tlp == TLP.AMBER and both.not_before == T


def test_disjoint_allow_lists_keep_the_originators() -> None:
    both = tightest(Restrictions(purposes=[Purpose.INVESTIGATION]),
                    Restrictions(purposes=[Purpose.SMUGGLING_OF_MIGRANTS]))
    assert both.purposes == [Purpose.SMUGGLING_OF_MIGRANTS]
