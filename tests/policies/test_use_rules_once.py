"""The rules on a use exist once, in Cedar: the plain-Python reference model agrees
with them on every combination of TLP label, use-time restriction, use kind,
evidential flag and consent (the generated equivalence test samples export under
TLP:RED too rarely to be relied on for it), and the holder's own check before it
declares a use (policies.holdercheck, what the SDK runs) refuses exactly what the
broker's engine refuses for the restrictions, with the same rule and sentence."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from policies import holdercheck, reference
from policies.acts import EVIDENTIAL_USES, needed_consent, use_refusal
from policies.decisions import Consent
from policies.engine import PolicyEngine
from schemas import TLP, Header, Purpose
from schemas.codes import ConsentScope, UseKind

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
HeaderFactory = Callable[..., Header]
SENDER, HOLDER = "TH-AHTD", "KH-AHTJP"
FLAGS = ["no_evidential_use", "no_onward_dissemination", "no_public_disclosure",
         "not_to_suspects", "consult_before_action"]
FLAG_SETS = [{}, *({f: True} for f in FLAGS), dict.fromkeys(FLAGS, True)]
USE_KINDS = [*(str(k) for k in UseKind), ""]


def _cases() -> list[tuple[TLP | None, dict[str, bool], str, bool, ConsentScope | None]]:
    return list(itertools.product([None, *TLP], FLAG_SETS, USE_KINDS, [False, True],
                                  [None, *holdercheck.CEDAR_CONSENT]))


def test_the_holder_can_use_unrestricted_information(
        engine: PolicyEngine, make_header: HeaderFactory) -> None:
    # Every refusal below is then the restrictions', never a missing basis or clearance.
    d = engine.decide_use(make_header(recipients=[HOLDER]), HOLDER, "", False, [], NOW,
                          "export")
    assert d.allowed, d


@pytest.mark.parametrize("purposes", [[], [Purpose.INVESTIGATION]])
def test_cedar_reference_and_holder_check_agree(
        engine: PolicyEngine, make_header: HeaderFactory, purposes: list[Purpose]) -> None:
    refused = 0
    for tlp, flags, use_kind, evidential, scope in _cases():
        header = make_header(recipients=[HOLDER], tlp=tlp, purposes=purposes, **flags)
        consents = [] if scope is None else [Consent(holdercheck.CEDAR_CONSENT[scope],
                                                     HOLDER)]
        purpose = "" if not purposes else str(Purpose.PROSECUTION)
        d = engine.decide_use(header, HOLDER, purpose, evidential, consents, NOW, use_kind)
        want = reference.decide(engine.federation, "use", header, HOLDER, NOW,
                                [(c.action, c.recipient) for c in consents], purpose,
                                evidential, use_kind)
        case = (tlp, flags, use_kind, evidential, scope, purposes)
        assert (d.allowed, frozenset(d.rules)) == (want.allowed, want.rules), case
        own = holdercheck.use_refusal(
            header.restrictions, SENDER, HOLDER, NOW, purpose=purpose,
            evidential=evidential, use_kind=use_kind,
            consents=[] if scope is None else [scope])
        if d.allowed:
            assert own is None, case
        else:
            refused += 1
            assert own is not None, case
            assert (own.rule, own.reason, own.rules) == (d.rule, d.reason, d.rules), case
    assert refused > len(_cases()) // 4  # the grid exercises the refusals


def test_needed_consent_is_the_one_that_lifts_the_refusal(
        engine: PolicyEngine, make_header: HeaderFactory) -> None:
    for tlp, flags, use_kind, evidential, _ in _cases():
        if use_kind == "":
            continue
        header = make_header(recipients=[HOLDER], tlp=tlp, **flags)
        need = needed_consent(UseKind(use_kind), evidential, header.restrictions)
        # As the broker does: evidence and disclosure to a court are evidential uses.
        evidential = evidential or UseKind(use_kind) in EVIDENTIAL_USES
        bare = engine.decide_use(header, HOLDER, "", evidential, [], NOW, use_kind)
        case = (tlp, flags, use_kind, evidential)
        if need is None:
            assert not set(bare.rules) & set(holdercheck.CONSENT_LIFTS), case
            continue
        (rule,) = (r for r, (scope, _) in holdercheck.CONSENT_LIFTS.items() if scope is need)
        assert not bare.allowed and rule in bare.rules, case
        # Evidential use first: it is what a court would ask about.
        assert need is ConsentScope.EVIDENTIAL_USE or (
            "restriction.no_evidential_use" not in bare.rules), case
        lifted = engine.decide_use(header, HOLDER, "", evidential,
                                   [Consent(holdercheck.CEDAR_CONSENT[need], HOLDER)], NOW,
                                   use_kind)
        assert rule not in lifted.rules, case


@pytest.mark.parametrize(("now", "rule"), [
    (NOW - timedelta(days=2), "restriction.not_before"),
    (NOW + timedelta(days=2), "restriction.expires_at"),
])
def test_time_rules_are_worded_alike(engine: PolicyEngine, make_header: HeaderFactory,
                                     now: datetime, rule: str) -> None:
    header = make_header(recipients=[HOLDER], not_before=NOW - timedelta(days=1),
                         expires_at=NOW + timedelta(days=1))
    d = engine.decide_use(header, HOLDER, "", False, [], now, "analysis")
    own = use_refusal(header.restrictions, SENDER, HOLDER, "", UseKind.ANALYSIS, False, [],
                      now)
    assert d.rule == rule and own == (d.rule, d.reason)


def test_the_originator_is_never_bound(make_header: HeaderFactory) -> None:
    header = make_header(tlp=TLP.RED, purposes=[Purpose.INVESTIGATION], **FLAG_SETS[-1])
    assert use_refusal(header.restrictions, SENDER, SENDER, "", UseKind.EXPORT, True, [],
                       NOW) is None


def test_an_evidential_consent_does_not_let_an_export_out(
        engine: PolicyEngine, make_header: HeaderFactory) -> None:
    """A holder with consent to use the information as evidence declares an evidential
    export: the consent lifts no_evidential_use, never no_onward_dissemination (before
    the export rule was Cedar's, the broker's Python pass looked at one consent only and
    let this export out)."""
    header = make_header(recipients=[HOLDER], no_evidential_use=True,
                         no_onward_dissemination=True)
    d = engine.decide_use(header, HOLDER, "", True, [Consent("use", HOLDER)], NOW, "export")
    assert not d.allowed and d.rule == "restriction.no_onward_dissemination", d
    assert use_refusal(header.restrictions, SENDER, HOLDER, "", UseKind.EXPORT, True,
                       [ConsentScope.EVIDENTIAL_USE], NOW) == (d.rule, d.reason)


def test_export_refusals_keep_their_words_and_order(
        engine: PolicyEngine, make_header: HeaderFactory) -> None:
    red = make_header(recipients=[HOLDER], tlp=TLP.RED)
    d = engine.decide_use(red, HOLDER, "", False, [], NOW, "export")
    assert (d.rule, d.reason) == ("restriction.tlp", (
        "refused: TH-AHTD marked the information TLP:RED (named recipients only): it may "
        "not be exported from orcon, even with consent"))
    assert set(d.rules) == {"restriction.tlp", "restriction.no_onward_dissemination"}
    h2 = make_header(recipients=[HOLDER], no_onward_dissemination=True,
                     expires_at=NOW + timedelta(days=1))
    d = engine.decide_use(h2, HOLDER, "", False, [], NOW, "export")
    assert (d.rule, d.reason) == ("restriction.no_onward_dissemination", (
        "refused: TH-AHTD forbids onward dissemination (an export) and has not consented "
        "to it by KH-AHTJP"))
    # Any other refusal is named first for a use; for a forward, onward dissemination
    # keeps its place before the time window.
    late = NOW + timedelta(days=2)
    assert engine.decide_use(h2, HOLDER, "", False, [], late, "export").rule == (
        "restriction.expires_at")
    assert engine.decide_forward(h2, HOLDER, "VN-MPS", [], late).rule == (
        "restriction.no_onward_dissemination")
