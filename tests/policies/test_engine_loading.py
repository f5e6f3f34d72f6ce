"""Policy loading, versioning and the decision cache."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from policies.engine import PolicyEngine, PolicyLoadError
from policies.federation import Agreement, Federation
from policies.loading import DEFAULT_POLICY_DIR
from schemas import Category, Header

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
HeaderFactory = Callable[..., Header]


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    d = tmp_path / "cedar"
    shutil.copytree(DEFAULT_POLICY_DIR, d)
    return d


def test_syntax_error_names_file_and_line(sample: Federation, policy_dir: Path) -> None:
    (policy_dir / "extra.cedar").write_text(
        "// operator addition\n\n@id(\"ok\")\nforbid (principal, action, resource)\n"
        "when { false };\n\n@id(\"broken\")\nforbid (principal, action, resource)\n"
        "when { principal.clearance < };\n")
    with pytest.raises(PolicyLoadError) as ei:
        PolicyEngine(sample, policy_dir)
    assert ei.value.source == str(policy_dir / "extra.cedar")
    assert ei.value.line == 7
    assert str(ei.value).startswith(f"{policy_dir / 'extra.cedar'}:7: invalid Cedar policy")


def test_schema_mismatch_names_file_and_line(sample: Federation, policy_dir: Path) -> None:
    (policy_dir / "extra.cedar").write_text(
        "@id(\"a\")\nforbid (principal, action, resource) when { false };\n"
        "@id(\"b\")\nforbid (principal, action == Orcon::Action::\"receive\", resource)\n"
        "when { principal.colour == \"red\" };\n")
    with pytest.raises(PolicyLoadError, match=r"extra\.cedar:3: policy does not match"):
        PolicyEngine(sample, policy_dir)


def test_bad_schema_refused(sample: Federation, policy_dir: Path) -> None:
    (policy_dir / "orcon.cedarschema").write_text("namespace Orcon { entity ; }")
    with pytest.raises(PolicyLoadError, match=r"orcon\.cedarschema:1: invalid Cedar schema"):
        PolicyEngine(sample, policy_dir)


def test_version_tracks_policies_and_registry(
    sample: Federation, policy_dir: Path, engine: PolicyEngine
) -> None:
    same = PolicyEngine(sample, policy_dir)
    assert same.version == engine.version and len(engine.version) == 16
    (policy_dir / "restrictions.cedar").write_text(
        (policy_dir / "restrictions.cedar").read_text() + "\n// a comment changes the text\n")
    assert PolicyEngine(sample, policy_dir).version != engine.version
    other = msgspec.structs.replace(sample, name="renamed")
    assert PolicyEngine(other).version != engine.version


def test_operator_forbid_is_reported(
    sample: Federation, policy_dir: Path, make_header: HeaderFactory
) -> None:
    (policy_dir / "operator.cedar").write_text(
        "@id(\"operator.no-cn\")\nforbid (principal, action, resource)\n"
        "when { principal == Orcon::Agency::\"CN-MPS\" };\n")
    eng = PolicyEngine(sample, policy_dir)
    (d,) = eng.decide_receive(make_header(), ["CN-MPS"], NOW)
    assert (d.allowed, d.rule, d.reason) == (False, "operator.no-cn",
                                             "refused by policy operator.no-cn")


def _without_commit_mou(fed: Federation) -> Federation:
    return msgspec.structs.replace(
        fed, agreements=[a for a in fed.agreements if a.id != "COMMIT-MOU-2004"])


def test_reload_never_serves_stale_decision(
    sample: Federation, make_header: HeaderFactory
) -> None:
    eng = PolicyEngine(sample)
    h = make_header(sender="TH-AHTD")
    (first,) = eng.decide_receive(h, ["CN-MPS"], NOW)
    (cached,) = eng.decide_receive(h, ["CN-MPS"], NOW)
    assert first.allowed and cached is first  # served from the cache
    old = eng.version
    new = eng.reload(_without_commit_mou(sample))
    assert new != old == first.policy_version
    (after,) = eng.decide_receive(h, ["CN-MPS"], NOW)
    assert not after.allowed and after.rule == "default.no-basis"
    assert after.policy_version == new


def test_cache_respects_time_edges(sample: Federation, make_header: HeaderFactory) -> None:
    eng = PolicyEngine(sample)
    h = make_header(expires_at=NOW + timedelta(seconds=1))
    assert eng.decide_receive(h, ["VN-MPS"], NOW)[0].allowed
    assert not eng.decide_receive(h, ["VN-MPS"], NOW + timedelta(seconds=1))[0].allowed
    # an agreement that ends also ends its cached permits
    ends = Agreement(id="SHORT-1", title="t", categories=[Category.LEGISLATION],
                     parties=["LA", "CN"],
                     valid_from=NOW.date(), valid_until=NOW.date(), legal_basis="x")
    fed = msgspec.structs.replace(sample, agreements=[*sample.agreements, ends])
    eng.reload(fed)
    h2 = make_header(sender="LA-MPS", category="e")
    assert eng.decide_receive(h2, ["CN-MPS"], NOW)[0].rule == "basis.SHORT-1"
    assert eng.decide_receive(h2, ["CN-MPS"], NOW + timedelta(days=1))[0].rule == (
        "default.no-basis")


def test_cache_is_bounded(sample: Federation, make_header: HeaderFactory) -> None:
    eng = PolicyEngine(sample, cache_size=5)
    for _ in range(4):
        eng.decide_receive(make_header(), ["VN-MPS", "KH-AHTJP"], NOW)
    assert eng.cache_info()["entries"] <= 5
