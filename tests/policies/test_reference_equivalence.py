"""Cedar's decisions equal the plain-Python reference model on generated federations,
headers (TLP labels and every use-time restriction included), use kinds and consents.
Each example decides receive for every agency of a generated federation (one batch) and
forward and use for each of them, so the default run covers well over 10,000 cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import reference
from policies.engine import Consent, PolicyEngine
from policies.federation import Federation, federation_from_dict
from schemas import TLP, Category, Header, Level, Purpose, Restrictions
from schemas.codes import UseKind

COUNTRIES = ["KH", "TH", "LA", "VN", "AU", "CN"]
OUTSIDE = ["FR", "ZZ-NOBODY"]  # an ISO code with no agency; a name nobody has
KINDS = ["alert", "intel_report", "information_request"]
CATEGORIES = [c.value for c in Category]
PURPOSES = [p.value for p in Purpose][:4]
USE_KINDS = [k.value for k in UseKind]
CONSENT_ACTIONS = ["forward", "use", "public_disclosure", "show_to_suspect", "executive_action"]
BASE = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
COUNTER = {"cases": 0}


@st.composite
def federations(draw: st.DrawFn) -> dict[str, Any]:
    n_agencies = draw(st.integers(8, 30))
    n_groups = draw(st.integers(0, 3))
    agency_ids = [f"AG-{i}" for i in range(n_agencies)]
    group_ids = [f"GRP-{i}" for i in range(n_groups)]
    agencies = []
    for aid in agency_ids:
        roles = draw(st.sampled_from(
            [["liaison"], ["liaison"], ["liaison", "focal_point"], ["auditor"]]))
        agencies.append({
            "id": aid,
            "name": aid,
            "country": draw(st.sampled_from(COUNTRIES)),
            "type": "police",
            "roles": roles,
            "clearance": draw(st.sampled_from([lv.value for lv in Level])),
            "groups": draw(st.lists(st.sampled_from(group_ids), unique=True, max_size=2))
            if group_ids else [],
        })
    groups = [
        {"id": gid, "name": gid,
         "members": draw(st.lists(st.sampled_from(COUNTRIES + agency_ids), unique=True,
                                  max_size=4))}
        for gid in group_ids
    ]
    names = COUNTRIES + agency_ids + group_ids
    agreements = []
    for i in range(draw(st.integers(0, 4))):
        default = draw(st.booleans())
        parties = draw(st.lists(st.sampled_from(names), unique=True,
                                min_size=0 if default else 1, max_size=4))
        start = BASE + draw(st.integers(-300, 300)) * DAY
        until_days = draw(st.none() | st.integers(0, 400))
        until = None if until_days is None else start + until_days * DAY
        agreements.append({
            "id": f"AGR-{i}",
            "title": "t",
            "parties": parties,
            "default_basis": default,
            "categories": draw(st.lists(st.sampled_from(CATEGORIES), unique=True,
                                        min_size=1)),
            "kinds": draw(st.lists(st.sampled_from(KINDS), unique=True, max_size=2)),
            "purposes": draw(st.lists(st.sampled_from(PURPOSES), unique=True, max_size=3)),
            "valid_from": start.date(),
            "valid_until": until.date() if until is not None else None,
            "legal_basis": "x",
        })
    return {"name": "gen", "agencies": agencies, "groups": groups,
            "agreements": [{k: v for k, v in a.items() if v is not None}
                           for a in agreements]}


def _time(draw: st.DrawFn) -> datetime | None:
    return draw(st.none() | st.integers(-200, 200).map(lambda d: BASE + d * DAY))


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[Federation, Header, datetime, list[Consent], str, bool, str]:
    fed = federation_from_dict(draw(federations()))
    ids = [a.id for a in fed.agencies]
    names = COUNTRIES + ids + [g.id for g in fed.groups] + OUTSIDE
    sender = draw(st.sampled_from([*ids, "AG-UNKNOWN"]) if draw(st.integers(0, 30)) == 0
                  else st.sampled_from(ids))
    restrictions = Restrictions(
        purposes=draw(st.lists(st.sampled_from(PURPOSES), unique=True, max_size=2)),
        no_evidential_use=draw(st.booleans()),
        no_onward_dissemination=draw(st.booleans()),
        release_to=draw(st.lists(st.sampled_from(names), unique=True, max_size=3)
                        | st.just([])),
        exclude=draw(st.lists(st.sampled_from(names), unique=True, max_size=3)
                     | st.just([])),
        not_before=_time(draw),
        expires_at=_time(draw),
        no_public_disclosure=draw(st.booleans()),
        not_to_suspects=draw(st.booleans()),
        consult_before_action=draw(st.booleans()),
        tlp=draw(st.none() | st.sampled_from(list(TLP))),
    )
    header = Header(
        v="1.0", id="01JD0000000000000000000000", kind=draw(st.sampled_from(KINDS)),
        sender=sender, sender_key="ed25519:AAAAAAAAAAAA", created_at=BASE,
        category=draw(st.sampled_from(list(Category))),
        level=draw(st.sampled_from(list(Level))), restrictions=restrictions,
    )
    # now lands on exact edges too (agreement starts, expiry instants)
    now = BASE + draw(st.integers(-400, 400)) * DAY + draw(
        st.sampled_from([timedelta(0), timedelta(microseconds=-1), timedelta(hours=5)]))
    consents = [Consent(a, r) for a, r in draw(st.lists(
        st.tuples(st.sampled_from(CONSENT_ACTIONS), st.sampled_from(ids)), max_size=4))]
    purpose = draw(st.sampled_from([*PURPOSES, ""]))
    use_kind = draw(st.sampled_from([*USE_KINDS, ""]))
    return fed, header, now, consents, purpose, draw(st.booleans()), use_kind


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenarios())
def test_cedar_equals_reference(
    scenario: tuple[Federation, Header, datetime, list[Consent], str, bool, str],
) -> None:
    fed, header, now, consents, purpose, evidential, use_kind = scenario
    engine = PolicyEngine(fed)
    principals = [a.id for a in fed.agencies] + ["AG-UNKNOWN"]
    pairs = [(c.action, c.recipient) for c in consents]
    got = engine.decide_receive(header, principals, now)
    for d in got:
        want = reference.decide(fed, "receive", header, d.recipient, now)
        assert (d.allowed, frozenset(d.rules)) == (want.allowed, want.rules), d
    for p in principals:
        f = engine.decide_forward(header, "AG-0", p, consents, now)
        want = reference.decide(fed, "forward", header, p, now, pairs)
        assert (f.allowed, frozenset(f.rules)) == (want.allowed, want.rules), ("forward", f)
        u = engine.decide_use(header, p, purpose, evidential, consents, now, use_kind)
        want = reference.decide(fed, "use", header, p, now, pairs, purpose, evidential,
                                use_kind)
        assert (u.allowed, frozenset(u.rules)) == (want.allowed, want.rules), ("use", u)
    COUNTER["cases"] += 3 * len(principals)


def test_generated_case_count() -> None:
    # Runs after the property test in file order; guards against the generator
    # shrinking the work below the brief's 10,000 cases.
    assert COUNTER["cases"] == 0 or COUNTER["cases"] >= 10_000, COUNTER
