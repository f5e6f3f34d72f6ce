"""A broker node has one policy engine, shared by its brokers and reloaded by its
registry watcher: a broker added after a registry change runs the registry in force.
It used to get an engine built from the federation the node started with, and decided
by stale rules until the next registry change. Real nats-server, brokers and a signed
registry published through the operator's bucket."""

from __future__ import annotations

import asyncio

from broker.hosting.stack import DevStack
from clients.sdk.client import AgencyClient
from schemas import Category, Level, examples
from tests.support.attacks import connect

NEW_AGREEMENT = b'''

[[agreements]]
id = "AU-CN-LEAD-2026"
title = "Australia-China police cooperation arrangement (sample)"
parties = ["AU", "CN"]
categories = ["a", "b", "c", "d"]
valid_from = 2026-01-01
legal_basis = "Bilateral arrangement (sample)"
'''


async def test_a_broker_added_after_a_registry_change_runs_the_new_registry(
        stack: DevStack) -> None:
    first = stack.brokers[0]
    old = first.engine.version
    await stack.publish_registry((stack.data_dir / "federation.toml").read_bytes()
                                 + NEW_AGREEMENT)
    for _ in range(200):
        if first.engine.version != old:
            break
        await asyncio.sleep(0.05)
    assert first.engine.version != old
    late = await stack.add_broker("broker-late")
    assert late.engine.version == first.engine.version
    # Only the late broker serves now: what it decides is the new agreement's.
    await first.stop()
    au: AgencyClient = await connect(stack, "AU-AFP-LO")
    try:
        sent = await au.send(examples.forged_passport_ring(), category=Category.DOCUMENTS,
                             level=Level.RESTRICTED, to=["CN-MPS"])
        assert sent.refused == [] and sent.sealed_to == ["CN-MPS"]
        outcome = await au.wait_outcome(sent.header.id)
        assert outcome.delivered == ["CN-MPS"]
        assert outcome.policy_version == first.engine.version
    finally:
        await au.close()
