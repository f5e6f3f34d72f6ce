"""policies.names: what resolves, what does not, and what is suggested (never applied)."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.acts import _unknown_party
from policies.countries import ISO_COUNTRIES
from policies.engine import PolicyEngine
from policies.federation import load_federation
from policies.names import Vocabulary, header_errors, raw_header_errors, unresolved
from schemas import Restrictions, examples
from schemas.header import Header


@pytest.fixture
def vocab(sample_federation: Path) -> Vocabulary:
    return Vocabulary(load_federation(sample_federation))


def test_every_registry_name_and_iso_code_resolves(vocab: Vocabulary,
                                                   sample_federation: Path) -> None:
    fed = load_federation(sample_federation)
    names = [a.id for a in fed.agencies] + [g.id for g in fed.groups] + sorted(ISO_COUNTRIES)
    assert unresolved(vocab, release_to=names, exclude=names, audience=[*names, "ALL"],
                      recipients=[a.id for a in fed.agencies]) == []


@pytest.mark.parametrize(("value", "first"), [
    ("MYANMAR", "MM (Myanmar)"), ("Viet Nam", "VN (Vietnam)"), ("laos", "LA (Laos)"),
    ("mm", "MM (Myanmar)"), ("KHM", "KH (Cambodia)"), ("commit", "COMMIT"),
    ("COMMITT", "COMMIT"), ("th-ahtd", "TH-AHTD"),
])
def test_suggestions(vocab: Vocabulary, value: str, first: str) -> None:
    (err,) = unresolved(vocab, exclude=[value])
    assert err.path == "header.restrictions.exclude[0]"
    assert err.rule == "restriction.unresolved"
    assert f"'{value}'" in err.message
    assert err.message.split("did you mean ", 1)[1].startswith(first), err.message


def test_recipients_must_be_agencies_and_all_only_in_audience(vocab: Vocabulary) -> None:
    errs = unresolved(vocab, recipients=["COMMIT", "KH-AHTJ"], release_to=["ALL"],
                      audience=["ALL"])
    assert [(e.path, e.rule) for e in errs] == [
        ("header.restrictions.release_to[0]", "restriction.unresolved"),
        ("header.recipients[0]", "recipient.unresolved"),
        ("header.recipients[1]", "recipient.unresolved"),
    ]
    assert "KH-AHTJP" in errs[2].message


def test_raw_and_decoded_headers_agree(vocab: Vocabulary) -> None:
    h: Header = examples.example_header(examples.mekong_route_report())
    bad = Header(**{**{f: getattr(h, f) for f in h.__struct_fields__},
                    "restrictions": Restrictions(exclude=["ZZ-NOBODY"]), "audience": ["X1"]})
    raw = {"restrictions": {"exclude": ["ZZ-NOBODY"]}, "audience": ["X1"],
           "recipients": list(h.recipients)}
    assert header_errors(vocab, bad) == raw_header_errors(vocab, raw)
    assert [e.path for e in header_errors(vocab, bad, recipients=False)] == [
        "header.restrictions.exclude[0]", "header.audience[0]"]
    assert raw_header_errors(vocab, b"not a map") == []


def test_an_amendment_resolves_names_as_the_message_does(engine: PolicyEngine) -> None:
    """An amended exclude / release_to is checked by the same names rule as the message
    itself: an ISO country with no agency of the federation is a country (it used to be
    refused by a second, narrower list), a misspelt one is refused with its nearest."""
    assert _unknown_party(Restrictions(exclude=["FR", "MM", "COMMIT"]), engine) is None
    refused = _unknown_party(Restrictions(exclude=["MYANMAR"]), engine)
    assert refused is not None
    assert "header.act.restrictions.exclude[0]" in refused and "MM (Myanmar)" in refused
