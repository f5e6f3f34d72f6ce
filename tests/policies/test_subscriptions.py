"""Focal points' subscriptions in `PolicyEngine.candidates` (pure, sample federation)."""

from __future__ import annotations

from typing import Any

import msgspec

from policies.audience import subscription_matches
from policies.engine import PolicyEngine
from policies.federation import Subscription, load_federation
from schemas import TLP, Category, Restrictions, Topics, Urgency, examples
from schemas.examples import example_header
from schemas.header import Header
from tests.support.paths import SAMPLE_FEDERATION


def _alert(**kw: Any) -> Header:
    h = example_header(examples.arrest_alert())
    return msgspec.structs.replace(h, sender="TH-AHTD", recipients=["KH-AHTJP"], audience=[],
                                   **kw)


def test_alert_pulls_in_matching_focal_points_only() -> None:
    engine = PolicyEngine(load_federation(SAMPLE_FEDERATION))
    h = _alert(category=Category.GROUPS, topics=Topics(route_countries=["LA"]))
    assert engine.candidates(h) == ["KH-AHTJP", "TH-BLO-CHIANGSAEN"]
    h = _alert(category=Category.ROUTES, topics=Topics(route_countries=["VN"]),
               urgency=Urgency.ROUTINE)
    assert engine.candidates(h) == ["KH-AHTJP"]  # below priority
    h = _alert(category=Category.ROUTES, topics=Topics(route_countries=["VN"]),
               urgency=Urgency.PRIORITY)
    assert engine.candidates(h) == ["KH-AHTJP", "VN-BGC"]


def test_red_and_bilateral_messages_are_not_expanded() -> None:
    engine = PolicyEngine(load_federation(SAMPLE_FEDERATION))
    red = _alert(topics=Topics(route_countries=["LA"]), restrictions=Restrictions(tlp=TLP.RED))
    assert engine.candidates(red) == ["KH-AHTJP"]
    report = msgspec.structs.replace(
        example_header(examples.mekong_route_report()), sender="TH-AHTD",
        recipients=["KH-AHTJP"], audience=[], topics=Topics(route_countries=["LA"]))
    assert engine.candidates(report) == ["KH-AHTJP"]


def test_filters_need_a_shared_value() -> None:
    h = _alert(topics=Topics(document_types=["P"]))
    assert subscription_matches(Subscription(document_types=["P", "ID"]), h)
    assert not subscription_matches(Subscription(document_types=["V"]), h)
    assert not subscription_matches(Subscription(route_countries=["TH"]), h)
    assert subscription_matches(Subscription(), h)


def test_nationality_filter() -> None:
    h = _alert(topics=Topics(nationalities=["MM", "LA"]))
    assert subscription_matches(Subscription(nationalities=["MM"]), h)
    assert not subscription_matches(Subscription(nationalities=["VN"]), h)
    assert not subscription_matches(Subscription(nationalities=["MM"]), _alert())
