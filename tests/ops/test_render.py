"""`orcon deploy render`: the production plan (TLS, three hub nodes, a leafnode per
country) is accepted by nats-server itself, each leafnode holds its own country's
agencies and nothing else, and re-rendering keeps every credential."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from broker.hosting import tls
from broker.hosting.natsserver import find_binary
from broker.hosting.topology import Plan, countries_of, render
from policies.federation import load_federation
from schemas.clock import utcnow
from tests.support.paths import SAMPLE_FEDERATION as SAMPLE


def _load(path: Path) -> dict[str, object]:
    text = path.read_text()
    return json.loads(text[text.index("\n") + 1:])  # after the header comment  # type: ignore[no-any-return]


@pytest.fixture
def rendered(tmp_path: Path) -> tuple[Path, Plan]:
    files = tls.ensure_dev_ca(tmp_path / "tls", now=utcnow())
    plan = dataclasses.replace(
        Plan.sample(countries_of(load_federation(SAMPLE)), data_root=str(tmp_path / "var")),
        tls_dir=str(files.ca.parent))
    render(tmp_path / "out", SAMPLE, plan)
    return tmp_path / "out", plan


def test_every_rendered_file_is_a_valid_nats_server_configuration(
    rendered: tuple[Path, Plan]
) -> None:
    out, plan = rendered
    files = sorted(out.glob("hub/n*.conf")) + sorted(out.glob("countries/*/leaf.conf"))
    assert len(files) == 3 + len(plan.leaves)
    for path in files:
        proc = subprocess.run([str(find_binary()), "-t", "-c", str(path)],
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, (path, proc.stdout + proc.stderr)
        assert path.stat().st_mode & 0o077 == 0, path  # route password or link seeds


def test_each_leafnode_holds_its_own_countrys_agencies_only(rendered: tuple[Path, Plan]) -> None:
    out, _ = rendered
    fed = load_federation(SAMPLE)
    hub = _load(out / "hub" / "n1.conf")
    for country in countries_of(fed):
        mine = {f"AGENCY-{a.id}" for a in fed.agencies
                if a.country == country and not a.is_auditor}
        leaf = _load(out / "countries" / country / "leaf.conf")
        assert set(leaf["accounts"]) == mine  # type: ignore[arg-type]
        remotes = leaf["leafnodes"]["remotes"]  # type: ignore[index]
        assert {r["account"] for r in remotes} == mine
        assert all(len(r["urls"]) == 3 and "tls" in r for r in remotes)
        assert "jetstream" not in leaf  # JetStream lives on the hub only
        for acct in mine:  # the hub knows the link's public key, never the desk's
            hub_users = {u["nkey"] for u in hub["accounts"][acct]["users"]}  # type: ignore[index]
            leaf_users = {u["nkey"] for u in leaf["accounts"][acct]["users"]}  # type: ignore[index]
            assert hub_users and leaf_users and not hub_users & leaf_users


def test_re_rendering_keeps_every_credential(rendered: tuple[Path, Plan]) -> None:
    out, plan = rendered
    before = {p: p.read_bytes() for p in out.rglob("*.nk")} | {
        out / "hub" / "creds" / "route.pw": (out / "hub" / "creds" / "route.pw").read_bytes()}
    render(out, SAMPLE, plan)
    assert {p: p.read_bytes() for p in before} == before


def test_a_country_without_a_leafnode_in_the_plan_is_refused(tmp_path: Path) -> None:
    plan = Plan.sample(["TH"])
    with pytest.raises(ValueError, match="no leafnode for"):
        render(tmp_path, SAMPLE, plan)
