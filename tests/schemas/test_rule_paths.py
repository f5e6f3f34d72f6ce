"""Every country code and language tag of a body is checked where it stands: replacing one
alone makes decode_body name exactly that path and its rule. The body rules build an
item's path only for an error (a list's path and the index), so this pins the index
of every item of every list, in every body kind."""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.bodies import Alert, Body, IntelReport
from schemas.codec import decode_body
from schemas.errors import SchemaError
from schemas.examples import EXAMPLES
from tests.support.strategies import patterned, replace_at, struct_strategy

_COUNTRY = r"^[A-Z]{2}$"
_LANG = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
# (replacement, rule it must draw) for each code the body rules check.
_BREAK = {
    _COUNTRY: [("ZZ", "iso3166-alpha2")],
    _LANG: [("zz", "iso639-1"), ("en-x", "bcp47")],
}


def _assert_every_code_checked_in_place(body: Any) -> int:
    found = patterned(msgspec.to_builtins(body), mi.type_info(Body), "body", _BREAK)
    for path, pattern in found:
        for bad, rule in _BREAK[pattern]:
            data = msgspec.msgpack.encode(replace_at(msgspec.to_builtins(body), path, bad))
            with pytest.raises(SchemaError) as caught:
                decode_body(data)
            got = {(e.path, e.rule) for e in caught.value.errors}
            # A stateless vessel with a flag is refused for that, its flag unread.
            stateless = (path.removesuffix(".flag") + ".stateless", "vessel-flag")
            assert (path, rule) in got or (path.endswith(".flag") and stateless in got), (
                path,
                bad,
            )
    return len(found)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_every_code_of_each_example_is_checked_where_it_stands(kind: str) -> None:
    _assert_every_code_checked_in_place(EXAMPLES[kind]())


def test_the_route_report_has_codes_in_items_past_the_first() -> None:
    # The test above must reach items at index > 0 (persons[2], points[3], ...).
    doc = msgspec.to_builtins(EXAMPLES["intel_report"]())
    paths = [p for p, _ in patterned(doc, mi.type_info(Body), "body", _BREAK)]
    assert any("[2]" in p for p in paths) and any("[3]" in p for p in paths), paths


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(struct_strategy(IntelReport), struct_strategy(Alert)))
def test_every_code_of_a_report_or_alert_is_checked_where_it_stands(body: Any) -> None:
    # The kinds whose lists the rules walk item by item. Generated bodies may break other
    # rules too: only the broken code's error is asserted.
    _assert_every_code_checked_in_place(body)


def _every_kind() -> st.SearchStrategy[Any]:
    info = mi.type_info(Body)
    assert isinstance(info, mi.UnionType)
    return st.one_of(*(struct_strategy(t.cls) for t in info.types
                       if isinstance(t, mi.StructType)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_every_kind())
def test_every_code_of_any_kind_of_body_is_checked_where_it_stands(body: Any) -> None:
    # Every kind, with its optional parts filled in at random: a narrative or provision
    # the examples leave out is where an unchecked language tag would hide.
    _assert_every_code_checked_in_place(body)


def test_an_extradition_requests_optional_narratives_and_offence_provisions_are_checked(
) -> None:
    from schemas.bodies import LegalProvision, Narrative
    from schemas.examples import extradition_request

    req = extradition_request()
    stage = req.stage
    offence = stage.offences[0]  # type: ignore[union-attr]
    with_excerpt = msgspec.structs.replace(offence, provision=msgspec.structs.replace(
        offence.provision, excerpt=Narrative("Whoever organizes...", "en")))
    body = msgspec.structs.replace(
        req, prior_contact=Narrative("Called the central authority.", "en"),
        officials_present=Narrative("Two officers of the requesting State.", "en"),
        stage=msgspec.structs.replace(stage, offences=[with_excerpt]))
    assert isinstance(body.provisions[0], LegalProvision)
    assert _assert_every_code_checked_in_place(body) >= 3
