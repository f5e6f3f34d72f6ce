from __future__ import annotations

import pytest

from schemas.codes import TLP
from schemas.restrictions import Restrictions, apply_tlp


def flags(r: Restrictions) -> tuple[bool, bool, bool]:
    return (r.no_onward_dissemination, r.no_public_disclosure, r.not_to_suspects)


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        (TLP.RED, (True, True, True)),
        (TLP.AMBER_STRICT, (True, True, True)),
        (TLP.AMBER, (True, True, False)),
        (TLP.GREEN, (False, True, False)),
        (TLP.CLEAR, (False, False, False)),
    ],
)
def test_presets(label: TLP, expected: tuple[bool, bool, bool]) -> None:
    assert flags(apply_tlp(Restrictions(tlp=label))) == expected
    assert Restrictions(tlp=label).expanded() == apply_tlp(Restrictions(tlp=label))


def test_preset_never_loosens_explicit_restrictions() -> None:
    r = Restrictions(tlp=TLP.CLEAR, no_onward_dissemination=True, release_to=["TH"])
    out = apply_tlp(r)
    assert out.no_onward_dissemination and out.release_to == ["TH"]


def test_no_label_is_unchanged() -> None:
    r = Restrictions(not_to_suspects=True)
    assert apply_tlp(r) is r
