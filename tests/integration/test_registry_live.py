"""A new agreement reaches running brokers without a restart; the change is audited
and an invalid registry is refused before it reaches any broker."""

from __future__ import annotations

import asyncio

import pytest

from broker.audit.events import decode_record
from broker.hosting.stack import DevStack
from clients.sdk.client import AgencyClient
from policies.federation import FederationError
from schemas import Category, Level, examples
from schemas.events import EventType

NEW_AGREEMENT = b'''

[[agreements]]
id = "AU-CN-LEAD-2026"
title = "Australia-China police cooperation arrangement (sample)"
parties = ["AU", "CN"]
categories = ["a", "b", "c", "d"]
valid_from = 2026-01-01
legal_basis = "Bilateral arrangement (sample)"
'''


async def test_new_agreement_applies_without_restart(
    stack: DevStack, agency  # type: ignore[no-untyped-def]
) -> None:
    au: AgencyClient = await agency("AU-AFP-LO")
    before = await au.send(examples.forged_passport_ring(), category=Category.DOCUMENTS,
                           level=Level.RESTRICTED, to=["CN-MPS"])
    assert [r.rule for r in before.refused] == ["default.no-basis"]
    old_version = stack.brokers[0].engine.version

    toml = (stack.data_dir / "federation.toml").read_bytes() + NEW_AGREEMENT
    await stack.publish_registry(toml)
    for _ in range(200):
        if stack.brokers[0].engine.version != old_version:
            break
        await asyncio.sleep(0.05)
    assert stack.brokers[0].engine.version != old_version

    after = await au.send(examples.forged_passport_ring(), category=Category.DOCUMENTS,
                          level=Level.RESTRICTED, to=["CN-MPS"])
    assert after.refused == [] and after.sealed_to == ["CN-MPS"]
    outcome = await au.wait_outcome(after.header.id)
    assert outcome.delivered == ["CN-MPS"]
    assert outcome.policy_version == stack.brokers[0].engine.version

    new_version = stack.brokers[0].engine.version
    nc = await stack.broker_connection("t")
    try:
        js = nc.jetstream()
        found = None
        for _ in range(100):
            last = (await js.stream_info("AUDIT")).state.last_seq
            events = [decode_record((await js.get_msg("AUDIT", q)).data or b"").event
                      for q in range(1, last + 1)]
            found = next((e for e in events if e.type == EventType.POLICY_CHANGED), None)
            if found:
                break
            await asyncio.sleep(0.1)
        assert found is not None
        assert found.policy_version == new_version
        assert found.details["previous_version"] == old_version
    finally:
        await nc.close()


async def test_invalid_registry_is_refused_before_publishing(stack: DevStack) -> None:
    bad = (stack.data_dir / "federation.toml").read_bytes() + b'''
[[agreements]]
id = "EMPTY"
title = "no parties"
parties = []
categories = ["a"]
valid_from = 2026-01-01
legal_basis = "none"
'''
    version = stack.brokers[0].engine.version
    with pytest.raises(FederationError, match="EMPTY"):
        await stack.publish_registry(bad)
    await asyncio.sleep(0.3)
    assert stack.brokers[0].engine.version == version
