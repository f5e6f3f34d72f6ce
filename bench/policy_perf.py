"""Policy-engine throughput, for `orcon bench` and for regressions.

A 195-agency federation (one agency per country, regional groups, a default basis
and bilateral agreements) is built in memory, so the figures do not depend on the
sample registry.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Any

from policies.countries import ISO_COUNTRIES
from policies.engine import PolicyEngine
from policies.federation import Federation, federation_from_dict
from schemas import Category, Header, Level, Restrictions

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def big_federation(n: int = 195) -> Federation:
    countries = sorted(ISO_COUNTRIES)[:n]
    levels = ["RESTRICTED", "CONFIDENTIAL", "SECRET"]
    agencies: list[dict[str, Any]] = [
        {"id": f"{c}-NCB", "name": f"NCB {c}", "country": c, "type": "ncb",
         "roles": ["liaison"], "clearance": levels[i % 3]}
        for i, c in enumerate(countries)
    ]
    groups = [
        {"id": f"REGION-{r}", "name": f"region {r}", "members": countries[r::5]}
        for r in range(5)
    ]
    agreements: list[dict[str, Any]] = [
        {"id": "UNTOC-27", "title": "UNTOC art. 27", "default_basis": True,
         "categories": ["a", "b", "c", "d", "e", "f"], "valid_from": date(2003, 9, 29),
         "legal_basis": "UNTOC art. 27"},
    ]
    agreements += [
        {"id": f"REGION-{r}-MOU", "title": "regional MOU", "parties": [f"REGION-{r}"],
         "categories": ["a", "b", "c", "d"], "valid_from": date(2010, 1, 1),
         "valid_until": date(2030, 12, 31), "legal_basis": "MOU"}
        for r in range(5)
    ]
    return federation_from_dict({"name": "bench", "agencies": agencies, "groups": groups,
                                 "agreements": agreements}, source="<bench>")


def _header(fed: Federation, i: int) -> Header:
    return Header(
        v="1.0", id="01JD0000000000000000000000", kind="alert",
        sender=fed.agencies[i % len(fed.agencies)].id, sender_key="ed25519:AAAAAAAAAAAA",
        created_at=NOW, category=Category.ROUTES, level=Level.CONFIDENTIAL,
        restrictions=Restrictions(exclude=["REGION-3"], release_to=[], purposes=[]),
        audience=["ALL"],
    )


def measure(seconds: float = 1.0) -> dict[str, float]:
    """Steady-state decisions per second (uncached Cedar and cached), and the latency
    of one uncached 195-recipient fan-out."""
    fed = big_federation()
    uncached = PolicyEngine(fed, cache_size=0)
    cached = PolicyEngine(fed)
    headers = [_header(fed, i) for i in range(16)]
    recipients = [uncached.candidates(h) for h in headers]

    uncached.decide_receive(headers[0], recipients[0], NOW)  # warm-up
    fan: list[float] = []
    n, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds or not fan:
        i = len(fan) % len(headers)
        s = time.perf_counter()
        n += len(uncached.decide_receive(headers[i], recipients[i], NOW))
        fan.append(time.perf_counter() - s)
    uncached_rate = n / elapsed

    for h, r in zip(headers, recipients, strict=True):
        cached.decide_receive(h, r, NOW)
    n, t0 = 0, time.perf_counter()
    k = 0
    while (elapsed := time.perf_counter() - t0) < seconds or k == 0:
        i = k % len(headers)
        n += len(cached.decide_receive(headers[i], recipients[i], NOW))
        k += 1
    fan.sort()
    return {
        "decisions_per_s": uncached_rate,
        "decisions_per_s_cached": n / elapsed,
        "fanout_195_ms": fan[len(fan) // 2] * 1000,
        "fanout_195_p99_ms": fan[min(len(fan) - 1, int(len(fan) * 0.99))] * 1000,
        "recipients": float(len(recipients[0]) + 1),
    }


if __name__ == "__main__":
    for k, v in measure().items():
        print(f"{k:>24}: {v:,.1f}")
