"""deploy/prometheus/orcon-rules.yml: valid rules whose every orcon_* metric is one the
brokers actually export (broker/metrics.py and the gauges broker/hosting/health.py adds)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from broker.hosting.health import HealthServer
from broker.metrics import Metrics

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "orcon-rules.yml"
NAME = re.compile(r"\b(orcon_[a-z0-9_]+)\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",), "summary": ("_sum", "_count", "")}


def exported(registry: CollectorRegistry) -> set[str]:
    """Every series name a scrape of `registry` can carry (labelled families with no
    child yet have no sample, so names come from the families and their types)."""
    out: set[str] = set()
    for family in registry.collect():
        out |= {family.name + suffix for suffix in SUFFIXES[family.type]}
    return out


def unknown_metrics(rules: dict[str, Any], known: set[str]) -> list[tuple[str, str]]:
    return [(rule["alert"], name)
            for group in rules["groups"] for rule in group["rules"]
            for name in NAME.findall(rule["expr"]) if name not in known]


def broker_metrics() -> set[str]:
    metrics = Metrics()
    # The health server adds its gauges to the broker's registry when it is built; it
    # touches NATS only when asked for a page.
    HealthServer(None, metrics, ready=lambda: True)  # type: ignore[arg-type]
    return exported(metrics.registry)


def test_every_rule_is_complete_and_uses_only_exported_metrics() -> None:
    rules = yaml.safe_load(RULES.read_text())
    known = broker_metrics()
    assert {"orcon_consumer_pending", "orcon_route_seconds_bucket",
            "orcon_deliveries_total"} <= known
    alerts = [r for g in rules["groups"] for r in g["rules"]]
    assert len(alerts) >= 8
    for r in alerts:
        assert set(r) >= {"alert", "expr", "labels", "annotations"}, r.get("alert")
        assert r["labels"]["severity"] in {"page", "warn", "info"}
        assert r["annotations"]["summary"] and r["annotations"]["description"]
        assert r["expr"].count("(") == r["expr"].count(")"), r["alert"]
    assert unknown_metrics(rules, known) == []
    used = {n for r in alerts for n in NAME.findall(r["expr"])}
    # The rules watch each family the brokers export (a new metric needs a thought).
    assert {n.removesuffix("_bucket") for n in used} >= {
        n for n in known if not n.endswith(("_sum", "_count", "_bucket"))
        and n != "orcon_deliveries_total" and n != "orcon_consumer_ack_pending"}


def test_a_rule_naming_a_metric_nobody_exports_is_caught() -> None:
    bad = {"groups": [{"name": "g", "rules": [
        {"alert": "Typo", "expr": "rate(orcon_delivery_total[5m]) == 0"}]}]}
    assert unknown_metrics(bad, broker_metrics()) == [("Typo", "orcon_delivery_total")]
