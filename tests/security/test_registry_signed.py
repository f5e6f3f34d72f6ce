"""The federation registry is signed by the federation root; brokers refuse anything
else and never go back to an older version.

The attacker holds a service credential, which may write the registry bucket (the
brokers and operator tools need that). It writes an unsigned registry with an agreement
of its own, an altered copy of a genuinely signed one, and a genuinely signed older
version. Each must leave the brokers on the current registry, and each refusal must be
in the audit log, as must every accepted change.
"""

from __future__ import annotations

import asyncio

import msgspec

from broker.audit.events import AuditEvent
from broker.hosting.stack import DevStack
from broker.routing.policysync import REGISTRY_BUCKET, REGISTRY_KEY
from schemas.events import EventType
from tests.support.buckets import read_value, wait_changes, write_value

ROGUE_AGREEMENT = b'''

[[agreements]]
id = "ROGUE-2026"
title = "an agreement no one signed"
parties = ["AU", "CN"]
categories = ["a", "b", "c", "d"]
valid_from = 2026-01-01
legal_basis = "none"
'''


async def _policy_events(stack: DevStack, action: str, want: int) -> list[AuditEvent]:
    return await wait_changes(stack, EventType.POLICY_CHANGED, action, want)


async def _write(stack: DevStack, value: bytes) -> None:
    await write_value(stack, REGISTRY_BUCKET, REGISTRY_KEY, value)


async def test_unsigned_registry_in_the_bucket_is_refused_and_audited(stack: DevStack) -> None:
    version = stack.brokers[0].engine.version
    toml = (stack.data_dir / "federation.toml").read_bytes() + ROGUE_AGREEMENT
    await _write(stack, toml)
    [refused] = await _policy_events(stack, "refused", 1)
    assert refused.rule == "registry.signature"
    assert stack.brokers[0].engine.version == version


async def test_altered_signed_registry_is_refused(stack: DevStack) -> None:
    from keys.records import RegistryRecord, SignedRegistry

    genuine = await read_value(stack, REGISTRY_BUCKET, REGISTRY_KEY)
    signed = msgspec.msgpack.decode(genuine, type=SignedRegistry)
    record = msgspec.msgpack.decode(signed.registry, type=RegistryRecord)
    altered = msgspec.structs.replace(record, serial=record.serial + 1,
                                      federation=record.federation + ROGUE_AGREEMENT)
    version = stack.brokers[0].engine.version
    await _write(stack, msgspec.msgpack.encode(
        SignedRegistry(registry=msgspec.msgpack.encode(altered), signature=signed.signature)))
    [refused] = await _policy_events(stack, "refused", 1)
    assert refused.rule == "registry.signature"
    assert stack.brokers[0].engine.version == version


async def test_older_signed_registry_is_refused_and_changes_are_audited(
    stack: DevStack,
) -> None:
    older = await read_value(stack, REGISTRY_BUCKET, REGISTRY_KEY)
    old_version = stack.brokers[0].engine.version

    # The operator signs and publishes a new agreement: accepted and audited.
    toml = (stack.data_dir / "federation.toml").read_bytes() + ROGUE_AGREEMENT.replace(
        b"an agreement no one signed", b"signed by the root")
    await stack.publish_registry(toml)
    [accepted] = await _policy_events(stack, "registry", 1)
    new_version = stack.brokers[0].engine.version
    assert new_version != old_version
    assert accepted.policy_version == new_version
    assert accepted.details["previous_version"] == old_version
    assert int(accepted.details["serial"]) > int(accepted.details["previous_serial"])

    # The attack: the genuinely signed older registry, written back.
    await _write(stack, older)
    [refused] = await _policy_events(stack, "refused", 1)
    assert refused.rule == "registry.rollback"
    assert stack.brokers[0].engine.version == new_version


async def test_a_broker_started_after_a_rollback_refuses_it(stack: DevStack) -> None:
    from broker.routing.policysync import RegistryWatcher

    older = await read_value(stack, REGISTRY_BUCKET, REGISTRY_KEY)
    assert stack.connection is not None
    toml = (stack.data_dir / "federation.toml").read_bytes() + ROGUE_AGREEMENT.replace(
        b"an agreement no one signed", b"signed by the root")
    await stack.publish_registry(toml)
    await _policy_events(stack, "registry", 1)
    await _write(stack, older)  # written back while the late broker was down
    await _policy_events(stack, "refused", 1)

    nc = await stack.broker_connection("late")
    engine = stack.engine()
    late = RegistryWatcher(nc, lambda: [engine], bytes.fromhex(stack.connection.root_public),
                           broker_id="late")
    try:
        await late.start()
        for _ in range(100):
            if late.refusals:
                break
            await asyncio.sleep(0.05)
        assert late.refusals == 1 and late.record is None
        assert late.floor > 0 and late.floor == stack.registry.serial  # type: ignore[union-attr]
    finally:
        await late.stop()
        await nc.close()
