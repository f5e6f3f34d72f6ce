"""issue 14: least privilege per service. Each credential of the services account (and
the auditor's) does what its role needs and the server refuses it everything else:
a stolen broker credential cannot write the log, a bucket or a stream's configuration,
nor submit as an agency; the sequencer's cannot deliver, write a bucket or read
submissions; the acknowledgment watcher's cannot audit, route or write a bucket; the
operator's cannot deliver, audit, read submissions or touch the audit streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig

from broker.hosting.node import ROLE_USER
from broker.hosting.stack import DevStack
from broker.routing.policysync import REGISTRY_BUCKET, REGISTRY_KEY
from tests.support import raw_nats
from tests.support.raw_nats import Violations
from transport import subjects as s

KH = "KH-AHTJP"
KV_WRITE = f"$KV.{REGISTRY_BUCKET}.{REGISTRY_KEY}"

# (what it tries, subject) that the role must be refused; each line is one attack.
REFUSED: dict[str, list[tuple[str, str]]] = {
    "broker": [
        ("pub", s.AUDIT_SUBJECT),
        ("pub", KV_WRITE),
        ("pub", s.submit(KH)),
        ("pub", f"$JS.API.STREAM.CREATE.{s.DELIVER_STREAM}"),
        ("pub", f"$JS.API.STREAM.PURGE.{s.SUBMIT_STREAM}"),
        # A stolen broker credential must not take the sequencer's pending events off
        # the AUDITIN work queue (they would vanish before being logged), nor delete an
        # agency's inbox consumer.
        ("pub", f"$JS.API.CONSUMER.MSG.NEXT.{s.AUDIT_IN_STREAM}.sequencer"),
        ("pub", f"$JS.ACK.{s.AUDIT_IN_STREAM}.sequencer.1.1.1.1.0"),
        ("pub", f"$JS.API.CONSUMER.CREATE.{s.AUDIT_IN_STREAM}.thief"),
        ("pub", f"$JS.API.CONSUMER.DELETE.{s.AUDIT_IN_STREAM}.sequencer"),
        ("pub", f"$JS.API.CONSUMER.DELETE.{s.DELIVER_STREAM}.inbox-{KH}"),
    ],
    "sequencer": [
        ("pub", s.deliver(KH)),
        ("pub", s.deliver_unwatched(KH)),
        ("pub", s.report(KH)),
        ("pub", KV_WRITE),
        ("pub", s.submit(KH)),
        ("pub", f"$JS.API.CONSUMER.MSG.NEXT.{s.SUBMIT_STREAM}.{s.submit_consumer(KH)}"),
        ("pub", f"$JS.API.STREAM.PURGE.{s.AUDIT_IN_STREAM}"),
        ("sub", s.submit(KH)),
        ("sub", "orcon.resolve.*"),
    ],
    "ack-watcher": [
        # Its reminders are watched deliveries: the other subject is not its to write.
        ("pub", s.deliver_unwatched(KH)),
        ("pub", s.AUDIT_SUBJECT),
        ("pub", s.AUDIT_IN_SUBJECT),
        ("pub", KV_WRITE),
        ("pub", s.submit(KH)),
        ("pub", f"$JS.API.CONSUMER.MSG.NEXT.{s.SUBMIT_STREAM}.{s.submit_consumer(KH)}"),
        ("pub", f"$JS.API.STREAM.CREATE.{s.AUDIT_STREAM}"),
        # It fetches a delivery by sequence for a reminder, and nothing else by sequence.
        ("pub", f"$JS.API.STREAM.MSG.GET.{s.SUBMIT_STREAM}"),
        ("sub", "orcon.resolve.*"),
        ("sub", f"{s.service_inbox(ROLE_USER['broker'])}.>"),
    ],
    "operator": [
        ("pub", s.deliver(KH)),
        ("pub", s.deliver_unwatched(KH)),
        ("pub", s.AUDIT_SUBJECT),
        ("pub", s.AUDIT_IN_SUBJECT),
        ("pub", s.submit(KH)),
        ("pub", f"$JS.API.CONSUMER.MSG.NEXT.{s.SUBMIT_STREAM}.{s.submit_consumer(KH)}"),
        ("pub", f"$JS.API.STREAM.CREATE.{s.AUDIT_STREAM}"),
        ("pub", f"$JS.API.STREAM.MSG.GET.{s.AUDIT_STREAM}"),
        ("sub", "orcon.directory.*"),
        ("sub", f"{s.service_inbox(ROLE_USER['sequencer'])}.>"),
    ],
}


@pytest.fixture
async def connect_role(stack: DevStack) -> AsyncIterator[
        Callable[[str], Awaitable[tuple[NATS, Violations]]]]:
    opened: list[NATS] = []

    async def connect(role: str) -> tuple[NATS, Violations]:
        v = Violations()
        nc = await raw_nats.connect_role(stack, role, v.on_error)
        opened.append(nc)
        return nc, v

    yield connect
    for nc in opened:
        await nc.close()


@pytest.mark.parametrize("role", list(REFUSED))
async def test_each_service_credential_is_refused_outside_its_role(
    stack: DevStack, connect_role, role: str  # type: ignore[no-untyped-def]
) -> None:
    nc, v = await connect_role(role)
    js = nc.jetstream(timeout=2)
    # What the role does use works on this connection (the refusals below are the
    # rule, not a dead credential).
    if role == "operator":
        kv = await js.key_value(REGISTRY_BUCKET)
        assert (await kv.get(REGISTRY_KEY)).value
    elif role == "broker":
        assert (await js.consumer_info(s.SUBMIT_STREAM, s.submit_consumer(KH))).name
    else:
        assert (await js.stream_info(
            s.AUDIT_STREAM if role == "sequencer" else s.DELIVER_STREAM)).config.name
    refused = []
    for verb, subject in REFUSED[role]:
        if verb == "pub":
            await nc.publish(subject, b"\xc1 not for this role")
        else:
            await nc.subscribe(subject)
        await nc.flush()
        kind = "publish" if verb == "pub" else "subscription"
        assert kind in await v.wait_for(f'{kind} to "{subject}"')
        refused.append(subject)
    assert len(refused) == len(REFUSED[role])


async def test_the_services_in_dev_run_each_with_its_own_credential(stack: DevStack) -> None:
    """`orcon dev` assembles the same services as `orcon service`, each connected with
    its own role's credential."""
    from pathlib import Path

    assert stack.sequencer is not None and stack.node is not None and stack.ack_node is not None
    used = {  # nats-py keeps the seed path it was given (no public accessor)
        "sequencer": stack.sequencer.nc._nkeys_seed,
        "ack-watcher": stack.ack_node.nc._nkeys_seed,
        "broker": stack.brokers[0].nc._nkeys_seed,
    }
    assert {role: Path(seed).stem for role, seed in used.items()} == {
        role: ROLE_USER[role] for role in ("sequencer", "ack-watcher", "broker")}


async def test_the_operator_cannot_make_a_consumer_of_deliveries(
    stack: DevStack, connect_role  # type: ignore[no-untyped-def]
) -> None:
    """A stolen operator credential must not read the federation's deliveries (their
    headers name senders, recipients and urgent messages) through a consumer of its own
    making, pushed to its own inbox, nor re-point an agency's inbox consumer. Brokers
    create a joining agency's consumers (broker/routing/policysync.py): the operator
    creates none."""
    nc, v = await connect_role("operator")
    js = nc.jetstream(timeout=1)
    inbox = f"{s.service_inbox(ROLE_USER['operator'])}.snoop"
    got: list[bytes] = []

    async def on_msg(msg: Any) -> None:
        got.append(msg.data)

    await nc.subscribe(inbox, cb=on_msg)
    attacks = [
        ("durable.create", ConsumerConfig(durable_name="snoop", deliver_subject=inbox,
                                          filter_subject="orcon.deliver.>")),
        ("create", ConsumerConfig(deliver_subject=inbox, filter_subject="orcon.deliver.>")),
        ("durable.create", ConsumerConfig(durable_name=s.inbox_consumer(KH),
                                          filter_subjects=["orcon.deliver.>"],
                                          ack_policy=AckPolicy.EXPLICIT)),
    ]
    for api, config in attacks:
        with pytest.raises((nats.errors.TimeoutError, asyncio.TimeoutError,
                            nats.js.errors.Error)):
            await js.add_consumer(s.DELIVER_STREAM, config)
        assert "publish" in await v.wait_for(f'"$js.api.consumer.{api}.{s.DELIVER_STREAM}')
    assert got == []
