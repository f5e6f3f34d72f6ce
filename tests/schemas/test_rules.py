"""Semantic rules: each named with its full path and rule; every error collected."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from schemas.bodies import Convicted, MLARequest
from schemas.codec import decode_body, decode_header, encode, validate_json
from schemas.codes import (
    TLP,
    AlertType,
    AssistanceType,
    Decision,
    PersonRole,
    ReplyStatus,
    ResponseTerm,
    Urgency,
    VesselAsk,
)
from schemas.errors import FieldError, SchemaError
from schemas.examples import (
    CREATED,
    arrest_alert,
    consent_decision,
    example_header,
    extradition_request,
    forged_passport_ring,
    mekong_route_report,
    mla_request,
    nationality_verification_request,
    reply,
    vessel_by_sea,
)
from schemas.header import Header
from schemas.restrictions import Restrictions
from schemas.validate import check_body, check_header, imo_check_digit_ok

replace = msgspec.structs.replace


def rules(errors: list[FieldError]) -> set[tuple[str, str]]:
    return {(e.path, e.rule) for e in errors}


def test_bad_country_deep_in_a_person_names_the_full_path() -> None:
    r = forged_passport_ring()
    p = r.persons[1]
    bad_doc = replace(p.documents[0], issuing_state="ZZ")
    r = replace(r, persons=[r.persons[0], p, replace(p, ref="P3", documents=[bad_doc])])
    errs = check_body(r)
    assert ("body.persons[2].documents[0].issuing_state", "iso3166-alpha2") in rules(errs)
    assert "'ZZ'" in errs[0].message


def test_all_errors_are_collected_not_only_the_first() -> None:
    r = mekong_route_report()
    person = replace(r.persons[0], nationalities=["QQ"])
    vessel_free = replace(r.routes[0], points=list(reversed(r.routes[0].points)))
    r = replace(r, persons=[person, *r.persons[1:]], routes=[vessel_free])
    found = rules(check_body(r))
    assert ("body.persons[0].nationalities[0]", "iso3166-alpha2") in found
    assert ("body.routes[0].points[0].role", "route-order") in found
    assert ("body.routes[0].points[3].role", "route-order") in found
    with pytest.raises(SchemaError) as exc:
        decode_body(encode(r))
    assert len(exc.value.errors) >= 3


def test_vessel_has_flag_or_is_stateless() -> None:
    req = vessel_by_sea()
    neither = replace(req, vessel=replace(req.vessel, flag=None))
    both = replace(req, vessel=replace(req.vessel, stateless=True))
    assert ("body.vessel.flag", "vessel-flag") in rules(check_body(neither))
    assert ("body.vessel.stateless", "vessel-flag") in rules(check_body(both))
    stateless = replace(req, vessel=replace(req.vessel, flag=None, stateless=True))
    assert ("body.asks", "stateless-vessel") in rules(check_body(stateless))
    ok = replace(stateless, asks=[VesselAsk.ASSISTANCE])
    assert check_body(ok) == []


def test_imo_check_digit() -> None:
    assert imo_check_digit_ok("9074729")
    assert not imo_check_digit_ok("9074728")
    req = vessel_by_sea()
    bad = replace(req, vessel=replace(req.vessel, imo="9074728"))
    assert ("body.vessel.imo", "imo-check-digit") in rules(check_body(bad))


def test_mla_facts_required_unless_only_service_of_documents() -> None:
    req = replace(mla_request(), facts=None)
    assert ("body.facts", "untoc-18-15-c") in rules(check_body(req))
    service = replace(req, assistance=[AssistanceType.SERVICE_OF_DOCUMENTS])
    assert check_body(service) == []


def test_mla_missing_18_15_items_are_all_reported_with_their_article() -> None:
    raw = msgspec.json.decode(msgspec.json.encode(mla_request()))
    for key in ("requesting_authority", "subject_matter", "assistance", "purpose"):
        del raw[key]
    errs = validate_json(msgspec.json.encode(raw))
    paths = {e.path: e for e in errs}
    assert set(paths) == {
        "body.requesting_authority",
        "body.subject_matter",
        "body.assistance",
        "body.purpose",
    }
    assert "18(15)(a)" in paths["body.requesting_authority"].message
    assert "18(15)(f)" in paths["body.purpose"].message
    assert all(e.rule == "required" for e in errs)


def test_mla_struct_requires_each_unconditional_18_15_item() -> None:
    required = {f.name for f in msgspec.structs.fields(MLARequest) if f.required}
    assert {
        "requesting_authority",  # (a)
        "subject_matter",  # (b)
        "proceeding",  # (b)
        "conducting_authority",  # (b)
        "assistance",  # (d)
        "assistance_description",  # (d)
        "purpose",  # (f)
    } <= required


def test_extradition_convicted_needs_sentence_or_intention() -> None:
    req = extradition_request()
    convicted = Convicted(
        judgment_reference="J-1",
        court="Criminal Court",
        judgment_on=CREATED.date(),
        enforceable=True,
        presence=["legally_represented"],  # type: ignore[list-item]
        offences=req.provisions,
    )
    errs = check_body(replace(req, stage=convicted))
    assert ("body.stage.sentence", "extradition-sentence") in rules(errs)
    assert check_body(replace(req, stage=replace(convicted, sentence="8 years"))) == []


def test_alert_rules() -> None:
    a = arrest_alert()
    assert ("body.warrant", "alert-warrant") in rules(check_body(replace(a, warrant=None)))
    assert ("body.persons", "alert-person") in rules(check_body(replace(a, persons=[])))
    mo = replace(a, type=AlertType.MODUS_OPERANDI, persons=[], warrant=None)
    assert ("body.modus_operandi", "alert-method") in rules(check_body(mo))
    witness = replace(a.persons[0], roles=[PersonRole.WITNESS])
    assert ("body.persons", "alert-warrant") in rules(check_body(replace(a, persons=[witness])))


def test_refs_unique_and_resolving() -> None:
    r = mekong_route_report()
    dup = replace(r.persons[1], ref="P1")
    group = replace(r.groups[0], members=["P1", "P9"])
    r2 = replace(r, persons=[r.persons[0], dup, r.persons[2]], groups=[group])
    found = rules(check_body(r2))
    assert ("body.persons[1].ref", "ref-unique") in found
    assert ("body.groups[0].members[1]", "ref-resolves") in found


def test_nationality_verification_rules() -> None:
    req = nationality_verification_request()
    none_claimed = replace(req, claimed_nationality=None)
    assert ("body.claimed_nationality", "art-18-3") in rules(check_body(none_claimed))
    suspect = replace(req, person=replace(req.person, roles=[PersonRole.SUSPECT]))
    assert ("body.person.roles", "returnee-role") in rules(check_body(suspect))


def test_reply_and_consent_rules() -> None:
    declined = replace(reply(), status=ReplyStatus.DECLINED)
    assert ("body.reason", "reply-reason") in rules(check_body(declined))
    no_conditions = replace(reply(), conditions=[])
    assert ("body.conditions", "conditions") in rules(check_body(no_conditions))
    refused = replace(consent_decision(), decision=Decision.REFUSED)
    assert ("body.scopes", "consent-decision") in rules(check_body(refused))


def test_deadline_rules() -> None:
    req = replace(mla_request(), respond_by=None)
    assert req.response_term is ResponseTerm.BY_DATE
    assert ("body.respond_by", "deadline") in rules(check_body(req))
    header = example_header(mla_request())
    late = replace(mla_request(), respond_by=CREATED - timedelta(days=1))
    assert ("body.respond_by", "deadline") in rules(check_body(late, header))


def test_language_codes_are_iso_639() -> None:
    r = mekong_route_report()
    r = replace(r, narrative=replace(r.narrative, lang="xx"))
    assert ("body.narrative.lang", "iso639-1") in rules(check_body(r))
    odd = replace(r, narrative=replace(r.narrative, lang="EN_us"))
    assert ("body.narrative.lang", "bcp47") in rules(check_body(odd))
    ok = replace(r, narrative=replace(r.narrative, lang="hmn"))  # ISO 639-3: Hmong
    assert check_body(ok) == []


def test_header_kind_must_match_body() -> None:
    body = mekong_route_report()
    header = replace(example_header(body), kind="alert")
    assert ("header.kind", "kind-matches-body") in rules(check_body(body, header))


def test_reply_kinds_need_in_reply_to() -> None:
    header = replace(example_header(reply()), in_reply_to=None)
    assert ("header.in_reply_to", "in-reply-to") in rules(check_body(reply(), header))


def _header(**changes: object) -> Header:
    return replace(example_header(mekong_route_report()), **changes)


def test_header_rules_all_reported_together() -> None:
    h = _header(
        restrictions=Restrictions(
            release_to=["LA-NCB", "MY-RMP"],
            exclude=["MY-RMP"],
            expires_at=CREATED - timedelta(hours=1),
            tlp=TLP.RED,
        ),
        recipients=[],
        urgency=Urgency.URGENT,
        urgency_reasons=[],
        topics=replace(_header().topics, route_countries=["TH", "ZZ"]),
        languages=["en", "qq"],
    )
    found = rules(check_header(h))
    assert found == {
        ("header.restrictions.expires_at", "after-created"),
        ("header.restrictions.exclude", "release-exclude-disjoint"),
        ("header.recipients", "tlp-red-recipients"),
        ("header.urgency_reasons", "urgency-reason"),
        ("header.topics.route_countries[1]", "iso3166-alpha2"),
        ("header.languages[1]", "iso639-1"),
    }
    with pytest.raises(SchemaError) as exc:
        decode_header(encode(h))
    assert len(exc.value.errors) == 6


def test_header_naive_times_are_refused() -> None:
    h = _header(created_at=CREATED.replace(tzinfo=None))
    assert ("header.created_at", "timezone") in rules(check_header(h))


def test_header_unsorted_recipients_and_self_reply() -> None:
    h = _header(recipients=["MY-RMP", "LA-NCB"])
    h = replace(h, in_reply_to=h.id)
    found = rules(check_header(h))
    assert ("header.recipients", "sorted-unique") in found
    assert ("header.in_reply_to", "self-reference") in found


def test_header_structural_errors_all_listed() -> None:
    raw = msgspec.msgpack.decode(encode(_header()))
    raw["level"] = "TOP"
    raw["sender"] = 7
    raw["colour"] = "red"
    del raw["category"]
    with pytest.raises(SchemaError) as exc:
        decode_header(msgspec.msgpack.encode(raw))
    assert rules(exc.value.errors) == {
        ("header.level", "enum"),
        ("header.sender", "type"),
        ("header.colour", "unknown-field"),
        ("header.category", "required"),
    }


def test_body_unknown_field_and_bad_tag() -> None:
    raw = msgspec.json.decode(msgspec.json.encode(mekong_route_report()))
    raw["persons"][0]["shoe_size"] = 44
    raw["conveyances"][0]["type"] = "hovercraft"
    found = rules(validate_json(msgspec.json.encode(raw)))
    assert found == {
        ("body.persons[0].shoe_size", "unknown-field"),
        ("body.conveyances[0].type", "tag"),
    }
    raw = {"kind": "gossip"}
    assert rules(validate_json(msgspec.json.encode(raw))) == {("body.kind", "tag")}


def test_not_msgpack_is_a_schema_error() -> None:
    with pytest.raises(SchemaError) as exc:
        decode_body(b"\xc1")
    assert exc.value.errors[0].rule == "msgpack"


def test_semantic_rules_cover_valid_variants() -> None:
    # A vessel request with an ask repeated.
    req = replace(vessel_by_sea(), asks=[VesselAsk.BOARD, VesselAsk.BOARD])
    assert ("body.asks", "unique") in rules(check_body(req))


@pytest.mark.parametrize("kind", ["amendment", "withdrawal"])
def test_a_mistyped_language_in_an_amendment_or_withdrawal_reason_is_refused(kind: str) -> None:
    """Every narrative's language is an ISO 639-1 code; the reason of an amendment or a
    withdrawal was the one narrative no rule read."""
    from datetime import UTC, datetime

    from schemas.bodies import Amendment, Withdrawal
    from schemas.entities import Narrative
    from schemas.validate import check_body

    at = datetime(2026, 1, 1, tzinfo=UTC)
    reason = Narrative(text="the source withdrew", lang="en")
    good: Amendment | Withdrawal = (
        Amendment(message_id="01JABCDEFGHJKMNPQRSTVWXYZ0", amended_at=at, reason=reason)
        if kind == "amendment" else
        Withdrawal(message_id="01JABCDEFGHJKMNPQRSTVWXYZ0", withdrawn_at=at, reason=reason))
    assert [e for e in check_body(good) if e.path.endswith(".reason.lang")] == []
    bad = msgspec.structs.replace(good, reason=Narrative(text="the source withdrew",
                                                         lang="english"))
    errors = check_body(bad)
    assert [e.path for e in errors if e.path.endswith("reason.lang")] == ["body.reason.lang"]
