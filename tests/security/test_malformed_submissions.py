"""Oversize, truncated and malformed NATS messages on the submit subject: each gets a
typed rejection (an `Outcome` whose `error` starts with the rule), the broker keeps
running, and a good message sent afterwards is routed as usual.

Sizes: the server's max_payload (8 MiB, broker/hosting/provision.py) is enforced by the server
itself; the broker's own limit (`BrokerConfig.max_message_bytes`, 1 MiB) is enforced by
the broker with rule `envelope.size`.
"""

from __future__ import annotations

import os
import random

import pytest
from nats.errors import MaxPayloadError

from broker.hosting.stack import DevStack
from clients.sdk.client import AgencyClient
from tests.support.harness import preseal
from transport import subjects as s


async def _connect(stack: DevStack, agency: str) -> AgencyClient:
    assert stack.connection is not None
    return await AgencyClient.connect(stack.connection, agency, passphrase=stack.passphrase())


async def test_malformed_submissions_get_typed_rejections(stack: DevStack) -> None:
    th, kh = await _connect(stack, "TH-AHTD"), await _connect(stack, "KH-AHTJP")
    try:
        [(good_id, good)] = preseal(th, ["KH-AHTJP"], 1)
        [(_, victim)] = preseal(th, ["KH-AHTJP"], 1)
        cases: dict[str, tuple[bytes, str]] = {
            "empty": (b"", "schema"),
            # Seeded: about 1 in 120 random buffers starts like a forward submission
            # (fixarray + str tag) and is then refused as `forward.schema` instead.
            "random bytes": (random.Random(7).randbytes(512), "schema"),
            "not msgpack": (b"\xc1" * 64, "schema"),
            "truncated half": (victim[: len(victim) // 2], "schema"),
            "truncated by one": (victim[:-1], "schema"),
            "trailing garbage": (victim + b"\x00", "schema"),
            "msgpack, not an envelope": (b"\x93\x01\x02\x03", "schema"),
            "above the broker limit": (victim + os.urandom(1024 * 1024), "envelope.size"),
        }
        for i, (data, _) in enumerate(cases.values()):
            await th.js.publish(s.submit("TH-AHTD"), data, headers={"Nats-Msg-Id": f"bad-{i}"})
        # Above the server's max_payload: refused before any broker sees it.
        with pytest.raises(MaxPayloadError):
            await th.js.publish(s.submit("TH-AHTD"), b"\x00" * (8 * 1024 * 1024 + 1))
        await th.js.publish(s.submit("TH-AHTD"), good, headers={"Nats-Msg-Id": good_id})

        outcomes = []
        for _ in range(20):
            outcomes += await th.outcomes(timeout=1.0)
            if any(o.message_id == good_id for o in outcomes) and len(outcomes) > len(cases):
                break
        rejected = [o for o in outcomes if o.status == "rejected"]
        rules = sorted((o.error or "").split(":")[0] for o in rejected)
        assert rules == sorted(rule for _, rule in cases.values()), rejected
        assert all(not o.delivered for o in rejected)
        good_outcome = next(o for o in outcomes if o.message_id == good_id)
        assert good_outcome.status == "routed" and good_outcome.delivered == ["KH-AHTJP"]
        batch = await kh.inbox(timeout=5.0)
        assert [m.header.id for m in batch.messages] == [good_id]
        assert all(b._tasks and not b._tasks[0].done() for b in stack.brokers)
    finally:
        await th.close()
        await kh.close()


async def test_server_refuses_payload_above_max_payload(stack: DevStack) -> None:
    """The client library checks max_payload itself; bypassing that check, the server
    still refuses the frame (and drops the offending connection), and the broker and
    other agencies carry on."""
    th = await _connect(stack, "TH-AHTD")
    try:
        nc = th.nc
        limit = nc.max_payload
        assert limit == 8 * 1024 * 1024
        errors: list[Exception] = []

        async def on_error(e: Exception) -> None:
            errors.append(e)

        nc._error_cb = on_error  # type: ignore[assignment]
        nc._max_payload = limit * 4  # an ill-behaved client: lie about the limit
        with pytest.raises(Exception) as raised:
            await th.js.publish(s.submit("TH-AHTD"), b"\x00" * (limit + 1), timeout=3)
        assert raised.value is not None
    finally:
        await th.close()
    server_log = (stack.data_dir / "nats" / "nats-server.log").read_text()
    assert f"maximum payload exceeded: {limit + 1} vs {limit}" in server_log
    kh = await _connect(stack, "KH-AHTJP")
    th2 = await _connect(stack, "TH-AHTD")
    try:
        [(mid, wire)] = preseal(th2, ["KH-AHTJP"], 1)
        await th2.js.publish(s.submit("TH-AHTD"), wire, headers={"Nats-Msg-Id": mid})
        assert (await th2.wait_outcome(mid)).delivered == ["KH-AHTJP"]
        assert [m.header.id for m in (await kh.inbox(timeout=5.0)).messages] == [mid]
    finally:
        await kh.close()
        await th2.close()
