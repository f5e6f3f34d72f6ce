"""`orcon bench` smoke test: every phase runs and the JSON document keeps its documented
shape. No timing thresholds here: figures depend on the machine, and belong in the
benchmark's own report (docs/bench.md), not in tests that fail on a slow machine."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.load import PAYLOAD, focal_ids, report_1k, write_federation
from bench.run import GOALS, KEYS
from policies.federation import load_federation
from schemas import encode

DOCUMENTED = (
    "relay_msgs_per_s", "secure_msgs_per_s", "secure_vs_relay", "p99_ms_at_1000",
    "fanout_195_ms", "policy_decisions_per_s", "audit_appends_per_s", "seal10_vs_gpg",
    "brokers2_vs_1", "broker_rss_mb", "schema_decodes_per_s",
)


def test_report_is_one_kilobyte() -> None:
    assert len(encode(report_1k())) == PAYLOAD


def test_bench_federation_has_195_focal_points(tmp_path: Path) -> None:
    path = tmp_path / "fed.toml"
    ids = write_federation(path, 195)
    fed = load_federation(path)
    assert ids == focal_ids(195) and len(set(ids)) == 195
    assert len(fed.agencies) == 196 and len(fed.agreements) == 1


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    # --smoke: the hidden tiny-count mode (same phases and shape as --quick and a full
    # run). Output goes through the real CLI entry point, in a subprocess, so every
    # child process it starts is proven to be stopped when it returns.
    proc = subprocess.run(
        [sys.executable, "-m", "clients.cli.main", "bench", "--smoke", "--json"],
        capture_output=True, text=True, timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.mark.timeout(120)
def test_documented_keys_are_positive_numbers(doc: dict[str, Any]) -> None:
    assert doc["schema"] == 1 and doc["mode"] == "smoke"
    for key in (*DOCUMENTED, *KEYS):
        value = doc[key]
        assert isinstance(value, float), key
        assert math.isfinite(value) and value > 0, (key, value)


def test_ratios_are_the_quotients_of_their_parts(doc: dict[str, Any]) -> None:
    assert doc["secure_vs_relay"] == doc["secure_msgs_per_s"] / doc["relay_msgs_per_s"]
    assert doc["seal10_vs_gpg"] == doc["gpg10_ms"] / doc["seal10_ms"]
    assert doc["brokers2_vs_1"] == (doc["secure_routed_per_s_2brokers"]
                                    / doc["secure_routed_per_s_1broker_mean"])


def test_goals_are_reported_not_enforced(doc: dict[str, Any]) -> None:
    assert set(doc["goals"]) == set(GOALS)
    for key, goal in doc["goals"].items():
        value, target = doc[key], goal["target"]
        assert goal["met"] == (value >= target if goal["op"] == ">=" else value <= target)


def test_details_name_what_was_measured(doc: dict[str, Any]) -> None:
    d = doc["details"]
    assert d["fanout"]["recipients"] == 195.0
    assert d["latency_at_1000"]["messages"] > 0
    assert d["seal_open"]["seal_x25519_10_ms"] == doc["seal10_ms"]
    assert d["brokers"]["broker_1"]["VmRSS"] == doc["broker_rss_mb"]


def test_html_report_is_self_contained(doc: dict[str, Any]) -> None:
    from bench.html_report import render_html

    page = render_html(doc)
    for key in GOALS:
        assert f"<code>{key}</code>" in page, key
    # The latency distribution: one line per offered rate, drawn inline.
    assert page.count("<polyline") == 2
    for outside in ("http://", "https://", "<script", "<link", "@import"):
        assert outside not in page, outside
