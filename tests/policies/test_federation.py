"""The registry loader: the sample loads, and every refusal names file, entry, field."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import msgspec
import pytest

from policies.federation import (
    Federation,
    FederationError,
    dumps,
    federation_from_dict,
    load_federation,
)
from tests.support.paths import SAMPLE_FEDERATION as SAMPLE


def test_sample_loads(sample: Federation) -> None:
    ids = {a.id for a in sample.agencies}
    assert {"KH-AHTJP", "CN-MPS", "LA-MPS", "MM-ATIPD", "TH-AHTD", "VN-MPS", "TH-NCB",
            "AU-AFP-LO", "XX-AUDIT"} <= ids
    assert sample.agency("XX-AUDIT").is_auditor
    assert {g.id for g in sample.groups} == {"COMMIT", "BALI-PROCESS", "ASEAN"}
    assert any(a.default_basis for a in sample.agreements)


def test_membership_helpers(sample: Federation) -> None:
    assert "TH-NCB" in sample.members_of("COMMIT")  # through its country
    assert "AU-AFP-LO" not in sample.members_of("COMMIT")
    assert sample.name_matches("TH", "TH-NCB")
    assert sample.name_matches("BALI-PROCESS", "AU-AFP-LO")
    assert not sample.name_matches("ASEAN", "CN-MPS")
    untoc = next(a for a in sample.agreements if a.id == "UNTOC-27")
    assert "CN-MPS" not in sample.agreement_parties(untoc)
    with pytest.raises(KeyError):
        sample.agency("NOPE-1")


def test_dumps_round_trips(sample: Federation, tmp_path: Path) -> None:
    p = tmp_path / "f.toml"
    p.write_text(dumps(sample))
    assert load_federation(p) == sample


def _raw() -> dict[str, Any]:
    return msgspec.toml.decode(SAMPLE.read_bytes())  # type: ignore[no-any-return]


def _agency(d: dict[str, Any], ident: str) -> dict[str, Any]:
    return next(a for a in d["agencies"] if a["id"] == ident)


def _agreement(d: dict[str, Any], ident: str) -> dict[str, Any]:
    return next(a for a in d["agreements"] if a["id"] == ident)


Mutation = Callable[[dict[str, Any]], None]

CASES: list[tuple[str, Mutation, str, str, str]] = [
    ("bad country", lambda d: _agency(d, "KH-AHTJP").update(country="XK"),
     "agencies[0] (KH-AHTJP)", "country", "not an ISO 3166-1 alpha-2"),
    ("unknown group", lambda d: _agency(d, "LA-MPS").update(groups=["MEKONG"]),
     "agencies[2] (LA-MPS)", "groups", "unknown group 'MEKONG'"),
    ("duplicate agency", lambda d: d["agencies"].append(dict(_agency(d, "VN-MPS"))),
     "agencies[11] (VN-MPS)", "id", "already defined as agencies[5]"),
    ("agency collides with country", lambda d: _agency(d, "TH-NCB").update(id="FR"),
     "agencies[6] (FR)", "id", "collides with the ISO 3166 country code FR"),
    ("group collides with agency", lambda d: d["groups"][0].update(id="CN-MPS"),
     "groups[0] (CN-MPS)", "id", "already defined as agencies[1]"),
    ("reserved", lambda d: d["groups"][1].update(id="ALL"),
     "groups[1] (ALL)", "id", "reserved"),
    ("unknown group member", lambda d: d["groups"][0]["members"].append("NOBODY-1"),
     "groups[0] (COMMIT)", "members", "unknown name 'NOBODY-1'"),
    ("unknown party", lambda d: _agreement(d, "LA-TH-MOU-2005").update(parties=["LA", "XTH"]),
     "agreements[1] (LA-TH-MOU-2005)", "parties", "unknown agency or group 'XTH'"),
    ("no parties", lambda d: _agreement(d, "COMMIT-MOU-2004").update(parties=[]),
     "agreements[0] (COMMIT-MOU-2004)", "parties", "at least one party"),
    ("no categories", lambda d: _agreement(d, "UNTOC-27").update(categories=[]),
     "agreements[2] (UNTOC-27)", "categories", "must list the categories"),
    ("until before from", lambda d: _agreement(d, "COMMIT-MOU-2004").update(
        valid_until=date(2004, 1, 1)),
     "agreements[0] (COMMIT-MOU-2004)", "valid_until", "is before valid_from 2004-10-29"),
    ("bad clearance", lambda d: _agency(d, "MM-ATIPD").update(clearance="TOP"),
     "agencies[3] (MM-ATIPD)", "clearance", "Invalid enum value 'TOP'"),
    ("bad id pattern", lambda d: _agency(d, "VN-MPS").update(id="vn.mps"),
     "agencies[5] (vn.mps)", "id", "Expected `str` matching regex"),
    ("unknown field", lambda d: _agency(d, "CN-MPS").update(colour="red"),
     "agencies[1] (CN-MPS)", "(entry)", "unknown field `colour`"),
    ("subscriptions without focal point",
     lambda d: _agency(d, "TH-AHTD").update(subscriptions=[{"kinds": ["alert"]}]),
     "agencies[4] (TH-AHTD)", "subscriptions", "focal_point"),
]


@pytest.mark.parametrize(("mutate", "entry", "fld", "rule"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_loader_errors_name_file_entry_field(
    tmp_path: Path, mutate: Mutation, entry: str, fld: str, rule: str
) -> None:
    data = _raw()
    mutate(data)
    path = tmp_path / "federation.toml"
    path.write_text(_to_toml(data))
    with pytest.raises(FederationError) as ei:
        load_federation(path)
    err = ei.value
    assert err.source == str(path)
    assert err.entry == entry
    assert err.field == fld
    assert rule in err.rule, err.rule
    assert str(err).startswith(f"{path}: {entry}.{fld}: ")
    assert "\n" not in str(err)


def _to_toml(data: dict[str, Any]) -> str:
    # The invalid data cannot go through Federation, so write it with the same
    # emitter on plain builtins.
    from policies.federation import _toml_value
    lines = [f"name = {_toml_value(data['name'])}"]
    for section in ("agencies", "groups", "agreements"):
        for item in data.get(section, []):
            lines += ["", f"[[{section}]]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def test_not_toml(tmp_path: Path) -> None:
    p = tmp_path / "f.toml"
    p.write_text("name = [unclosed\n")
    with pytest.raises(FederationError, match=r"f\.toml: \(document\): is not valid TOML"):
        load_federation(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FederationError, match="cannot be read"):
        load_federation(tmp_path / "absent.toml")


def test_from_dict_names_source() -> None:
    with pytest.raises(FederationError, match=r"^<mem>: agencies\[0\] \(A-1\)\.country"):
        federation_from_dict({"name": "x", "agencies": [{
            "id": "A-1", "name": "a", "country": "QQ", "type": "police", "roles": ["liaison"],
            "clearance": "SECRET"}]}, source="<mem>")


def test_default_basis_without_parties_covers_everyone() -> None:
    fed = federation_from_dict({"name": "x", "agencies": [
        {"id": "A-1", "name": "a", "country": "FR", "type": "police", "roles": ["liaison"],
         "clearance": "SECRET"}],
        "agreements": [{"id": "UNTOC-27", "title": "t", "categories": ["a"],
                        "valid_from": "2003-09-29", "legal_basis": "x",
                        "default_basis": True}]})
    assert fed.agreement_parties(fed.agreements[0]) == {"A-1"}
