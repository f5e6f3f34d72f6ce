"""Every rule both ways on the sample federation, with the explanation text."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from policies.engine import Consent, Decision, PolicyEngine
from schemas import Header

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)  # same instant as conftest.NOW
HeaderFactory = Callable[..., Header]


def one(engine: PolicyEngine, header: object, rcp: str, now: object = NOW) -> Decision:
    (d,) = engine.decide_receive(header, [rcp], now)  # type: ignore[arg-type]
    return d


def test_basis_permits_with_most_specific_agreement(
    engine: PolicyEngine, make_header: HeaderFactory
) -> None:
    d = one(engine, make_header(), "VN-MPS")
    assert d.allowed and d.rule == "basis.COMMIT-MOU-2004"
    assert d.reason == "permitted under COMMIT-MOU-2004"
    assert set(d.rules) == {"basis.COMMIT-MOU-2004", "basis.UNTOC-27"}
    assert d.policy_version == engine.version


def test_bilateral_mou_covers_category_e(engine: PolicyEngine, make_header: HeaderFactory) -> None:
    d = one(engine, make_header(sender="LA-MPS", category="e"), "TH-AHTD")
    assert d.allowed and d.rule == "basis.LA-TH-MOU-2005"


def test_default_basis_used_when_no_specific_agreement(
    engine: PolicyEngine, make_header: HeaderFactory
) -> None:
    d = one(engine, make_header(sender="AU-AFP-LO"), "TH-AHTD")
    assert d.allowed and d.rule == "basis.UNTOC-27"


def test_no_basis_refused(engine: PolicyEngine, make_header: HeaderFactory) -> None:
    d = one(engine, make_header(sender="TH-AHTD", category="e"), "CN-MPS")
    assert not d.allowed and d.rule == "default.no-basis" and d.rules == ()
    assert d.reason == "refused: no legal basis covers TH-AHTD and CN-MPS for category e"
    d = one(engine, make_header(sender="AU-AFP-LO"), "CN-MPS")
    assert not d.allowed and d.rule == "default.no-basis"


def test_category_other_has_no_basis(engine: PolicyEngine, make_header: HeaderFactory) -> None:
    assert one(engine, make_header(category="other"), "VN-MPS").rule == "default.no-basis"


def test_agreement_not_yet_in_force(engine: PolicyEngine, make_header: HeaderFactory) -> None:
    # Before 2003-09-29 nothing is in force; before 2005-07-13 the Lao-Thai MOU is not.
    h = make_header(sender="LA-MPS", category="e")
    assert one(engine, h, "TH-AHTD", datetime(2005, 7, 12, 23, 59, tzinfo=UTC)).rule == (
        "basis.UNTOC-27")
    assert one(engine, h, "TH-AHTD", datetime(2003, 9, 28, tzinfo=UTC)).rule == (
        "default.no-basis")


@pytest.mark.parametrize(("level", "allowed"), [("RESTRICTED", True), ("CONFIDENTIAL", False)])
def test_clearance(
    engine: PolicyEngine, make_header: HeaderFactory, level: str, allowed: bool
) -> None:
    d = one(engine, make_header(level=level), "LA-MPS")
    assert d.allowed is allowed
    if not allowed:
        assert d.rule == "restriction.clearance"
        assert d.reason == "refused: clearance RESTRICTED of LA-MPS is below CONFIDENTIAL"


@pytest.mark.parametrize("name", ["KH", "KH-AHTJP", "ASEAN", "COMMIT"])
def test_exclude_by_country_agency_group(
    engine: PolicyEngine, make_header: HeaderFactory, name: str
) -> None:
    d = one(engine, make_header(exclude=[name]), "KH-AHTJP")
    assert not d.allowed and d.rule == "restriction.exclude"
    assert d.reason == f"refused: KH-AHTJP is excluded by the sender (exclude = {name})"


def test_exclude_other_names_do_not_refuse(
    engine: PolicyEngine, make_header: HeaderFactory
) -> None:
    assert one(engine, make_header(exclude=["VN", "FR", "AU-AFP-LO"]), "KH-AHTJP").allowed


@pytest.mark.parametrize(("release", "rcp", "allowed"), [
    (["KH"], "KH-AHTJP", True),
    (["KH-AHTJP"], "KH-AHTJP", True),
    (["ASEAN"], "KH-AHTJP", True),
    (["BALI-PROCESS"], "TH-NCB", True),  # through its country TH
    (["VN"], "KH-AHTJP", False),
    (["ASEAN"], "AU-AFP-LO", False),
    (["FR"], "KH-AHTJP", False),  # a country with no agency still restricts
])
def test_release_to(
    engine: PolicyEngine, make_header: HeaderFactory, release: list[str], rcp: str,
    allowed: bool,
) -> None:
    d = one(engine, make_header(sender="VN-MPS", release_to=release), rcp)
    assert d.allowed is allowed, d
    if not allowed:
        assert d.rule == "restriction.release_to"
        assert d.reason == (f"refused: {rcp} is not among those the sender released to "
                            f"(release_to = {release[0]})")


def test_auditor_never_receives(engine: PolicyEngine, make_header: HeaderFactory) -> None:
    d = one(engine, make_header(release_to=["XX-AUDIT"], level="UNCLASSIFIED"), "XX-AUDIT")
    assert not d.allowed and d.rule == "role.auditor"


def test_sender_does_not_receive_own_message(
    engine: PolicyEngine, make_header: HeaderFactory
) -> None:
    d = one(engine, make_header(), "TH-AHTD")
    assert not d.allowed and d.rule == "restriction.self"


def test_use_window(engine: PolicyEngine, make_header: HeaderFactory) -> None:
    h = make_header(not_before=NOW + timedelta(hours=1), expires_at=NOW + timedelta(days=1))
    early = one(engine, h, "VN-MPS")
    assert early.rule == "restriction.not_before" and not early.allowed
    assert early.reason == "refused: the sender forbids use before 2025-06-01T13:00:00Z"
    assert one(engine, h, "VN-MPS", NOW + timedelta(hours=1)).allowed
    late = one(engine, h, "VN-MPS", NOW + timedelta(days=1))
    assert late.rule == "restriction.expires_at"
    assert late.reason == "refused: the information expired at 2025-06-02T12:00:00Z"


def test_unknown_recipient_is_a_refusal(engine: PolicyEngine, make_header: HeaderFactory) -> None:
    d = one(engine, make_header(), "NO-SUCH")
    assert not d.allowed and d.rule == "registry.unknown-agency"
    assert d.reason == "refused: NO-SUCH is not a registered agency"


def test_unknown_sender_refuses_everyone(
    engine: PolicyEngine, make_header: HeaderFactory
) -> None:
    d = one(engine, make_header(sender="FAKE-1"), "VN-MPS")
    assert not d.allowed and d.rule == "registry.unknown-sender"


def test_several_forbids_reported_by_precedence(
    engine: PolicyEngine, make_header: HeaderFactory
) -> None:
    h = make_header(level="SECRET", exclude=["LA"], release_to=["VN"],
                    expires_at=NOW - timedelta(seconds=1))
    d = one(engine, h, "LA-MPS")
    assert d.rule == "restriction.exclude"
    assert set(d.rules) == {"restriction.exclude", "restriction.release_to",
                            "restriction.clearance", "restriction.expires_at"}


def test_forbid_beats_every_basis(engine: PolicyEngine, make_header: HeaderFactory) -> None:
    # TH-NCB is covered by three agreements; one exclude still wins.
    assert not one(engine, make_header(sender="LA-MPS", exclude=["TH-NCB"]), "TH-NCB").allowed


def test_batch_preserves_order(engine: PolicyEngine, make_header: HeaderFactory) -> None:
    rcps = ["VN-MPS", "NO-SUCH", "CN-MPS", "LA-MPS", "XX-AUDIT"]
    got = engine.decide_receive(make_header(level="CONFIDENTIAL"), rcps, NOW)
    assert [d.recipient for d in got] == rcps
    assert [d.allowed for d in got] == [True, False, True, False, False]


def test_candidates(engine: PolicyEngine, make_header: HeaderFactory) -> None:
    h = make_header(sender="TH-AHTD", recipients=["AU-AFP-LO"], audience=["VN", "COMMIT"])
    c = engine.candidates(h)
    assert "TH-AHTD" not in c and "XX-AUDIT" not in c
    assert {"AU-AFP-LO", "VN-MPS", "VN-BGC", "CN-MPS", "TH-NCB"} <= set(c)
    assert c == sorted(set(c))
    everyone = engine.candidates(make_header(audience=["ALL"]))
    assert len(everyone) == 9  # 11 agencies minus the sender and the auditor


# -- forward -----------------------------------------------------------------


def test_forward_needs_consent_under_h2(engine: PolicyEngine, make_header: HeaderFactory) -> None:
    h = make_header(sender="VN-MPS", no_onward_dissemination=True)
    d = engine.decide_forward(h, "TH-AHTD", "KH-AHTJP", [], NOW)
    assert not d.allowed and d.rule == "restriction.no_onward_dissemination"
    assert d.reason == ("refused: VN-MPS forbids onward dissemination and has not consented "
                        "to forwarding to KH-AHTJP")
    ok = engine.decide_forward(h, "TH-AHTD", "KH-AHTJP", [Consent("forward", "KH-AHTJP")], NOW)
    assert ok.allowed


@pytest.mark.parametrize("consent", [Consent("forward", "MM-ATIPD"), Consent("use", "KH-AHTJP")])
def test_consent_is_exact(
    engine: PolicyEngine, make_header: HeaderFactory, consent: Consent
) -> None:
    h = make_header(sender="VN-MPS", no_onward_dissemination=True)
    assert not engine.decide_forward(h, "TH-AHTD", "KH-AHTJP", [consent], NOW).allowed


def test_forward_applies_receive_rules_to_third_party(
    engine: PolicyEngine, make_header: HeaderFactory
) -> None:
    h = make_header(sender="VN-MPS", level="CONFIDENTIAL")
    d = engine.decide_forward(h, "TH-AHTD", "LA-MPS", [], NOW)
    assert d.rule == "restriction.clearance"
    assert engine.decide_forward(make_header(sender="AU-AFP-LO"), "TH-AHTD", "CN-MPS", [],
                                 NOW).rule == "default.no-basis"
    assert engine.decide_forward(h, "TH-AHTD", "KH-AHTJP", [], NOW).allowed


# -- use ---------------------------------------------------------------------


def test_use_purpose(engine: PolicyEngine, make_header: HeaderFactory) -> None:
    h = make_header(sender="VN-MPS", purposes=["trafficking_in_persons"])
    assert engine.decide_use(h, "TH-AHTD", "trafficking_in_persons", False, [], NOW).allowed
    d = engine.decide_use(h, "TH-AHTD", "money_laundering", False, [], NOW)
    assert not d.allowed and d.rule == "restriction.purpose"
    assert d.reason == ("refused: purpose money_laundering is not among the purposes the "
                        "sender permits (trafficking_in_persons)")


def test_use_evidential_needs_consent(engine: PolicyEngine, make_header: HeaderFactory) -> None:
    h = make_header(sender="VN-MPS", no_evidential_use=True)
    assert engine.decide_use(h, "TH-AHTD", "prosecution", False, [], NOW).allowed
    d = engine.decide_use(h, "TH-AHTD", "prosecution", True, [], NOW)
    assert d.rule == "restriction.no_evidential_use"
    assert engine.decide_use(h, "TH-AHTD", "prosecution", True,
                             [Consent("use", "TH-AHTD")], NOW).allowed
    # a consent for forwarding does not lift the evidential restriction
    assert not engine.decide_use(h, "TH-AHTD", "prosecution", True,
                                 [Consent("forward", "TH-AHTD")], NOW).allowed


def test_originator_uses_own_information(
    engine: PolicyEngine, make_header: HeaderFactory
) -> None:
    h = make_header(sender="VN-MPS", no_evidential_use=True, purposes=["smuggling_of_migrants"])
    d = engine.decide_use(h, "VN-MPS", "prosecution", True, [], NOW)
    assert d.allowed and d.rule == "use.originator"


def test_auditor_cannot_use(engine: PolicyEngine, make_header: HeaderFactory) -> None:
    assert engine.decide_use(make_header(), "XX-AUDIT", "", False, [], NOW).rule == "role.auditor"


# -- read_metadata, subscribe ---------------------------------------------------


def test_read_metadata_auditors_only(engine: PolicyEngine) -> None:
    assert engine.decide_read_metadata("XX-AUDIT", "01JD0000000000000000000000").allowed
    d = engine.decide_read_metadata("TH-AHTD", "01JD0000000000000000000000")
    assert not d.allowed and d.rule == "default.deny"


def test_subscribe_focal_points_only(engine: PolicyEngine) -> None:
    assert engine.decide_subscribe("VN-BGC").allowed
    assert engine.decide_subscribe("TH-AHTD").rule == "default.deny"
    assert engine.decide_subscribe("XX-AUDIT").rule == "role.auditor"
