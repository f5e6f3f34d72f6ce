"""Message ids, clocks and revocations against a real nats-server and broker (issue 13,
"delivery without an audit record", "a revoked key keeps signing").

- Deduplication is keyed on (sender, message id, header hash): a second submission that
  reuses an id with other content or recipients is refused (`dedupe.reused-id`) and
  audited, never delivered with its audit records deduplicated away.
- The broker refuses a `created_at` outside a window of its own clock.
- A revocation applies to everything the broker receives after it: a stolen key cannot
  sign a message dated just before the revocation.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import schemas
from broker.hosting.stack import DevStack
from keys.directory import FederationRoot
from keys.envelope import header_hash
from keys.records import Revocation, RevocationList
from tests.support.attacks import connect, signed, wait_audit, wait_outcomes
from transport import subjects as s


async def test_reused_id_with_other_content_is_refused_and_audited(stack: DevStack) -> None:
    th, kh, vn = [await connect(stack, a) for a in ("TH-AHTD", "KH-AHTJP", "VN-MPS")]
    try:
        first, wire = signed(th, ["KH-AHTJP"])
        await th.js.publish(s.submit("TH-AHTD"), wire, headers={"Nats-Msg-Id": first.id})
        assert (await th.wait_outcome(first.id)).delivered == ["KH-AHTJP"]
        # Same id, other recipients and content; a fresh NATS id gets past JetStream.
        _, wire2 = signed(th, ["VN-MPS"], message_id=first.id)
        await th.js.publish(s.submit("TH-AHTD"), wire2, headers={"Nats-Msg-Id": "other"})
        got = await wait_outcomes(th, lambda o: any(x.message_id == first.id for x in o))
        assert [(o.status, (o.error or "").split(":")[0]) for o in got] == \
            [("rejected", "dedupe.reused-id")], got
        assert not (await vn.inbox(timeout=1.0)).messages
        hh = header_hash(schemas.decode_envelope(wire2).header).hex()
        entries = await wait_audit(stack, lambda es: any(
            e.rule == "dedupe.reused-id" for _, e in es))
        refused = [e for _, e in entries if e.rule == "dedupe.reused-id"]
        assert [(e.actor, e.message_id, e.header_hash) for e in refused] == \
            [("TH-AHTD", first.id, hh)]
        assert not any(e.counterpart == "VN-MPS" for _, e in entries)
        # The same submission again (a network retry) is no conflict: not refused.
        await th.js.publish(s.submit("TH-AHTD"), wire, headers={"Nats-Msg-Id": "retry"})
        again = await wait_outcomes(th, lambda o: bool(o), timeout=3.0)
        assert all(o.status != "rejected" for o in again), again
        assert [m.header.id for m in (await kh.inbox(timeout=2.0)).messages] == [first.id]
    finally:
        for c in (th, kh, vn):
            await c.close()


async def test_created_at_outside_the_broker_window_is_refused(stack: DevStack) -> None:
    th = await connect(stack, "TH-AHTD")
    try:
        now = datetime.now(UTC)
        for when in (now + timedelta(days=5 * 365), now - timedelta(hours=1)):
            header, wire = signed(th, ["KH-AHTJP"], created_at=when)
            await th.js.publish(s.submit("TH-AHTD"), wire, headers={"Nats-Msg-Id": header.id})
            outcome = await th.wait_outcome(header.id)
            assert outcome.status == "rejected" and not outcome.delivered
            assert (outcome.error or "").startswith("created_at.window"), outcome.error
            assert when.isoformat() in (outcome.error or "")
        # Inside the window (and after the sender's key became valid): routed.
        key = next(k for k in th.directory.entry("TH-AHTD").sign_keys
                   if k.key_id == th.identity.signing_key_id)
        earlier = max(now - timedelta(seconds=30), key.not_before + timedelta(milliseconds=1))
        header, wire = signed(th, ["KH-AHTJP"], created_at=earlier)
        await th.js.publish(s.submit("TH-AHTD"), wire, headers={"Nats-Msg-Id": header.id})
        assert (await th.wait_outcome(header.id)).delivered == ["KH-AHTJP"]
    finally:
        await th.close()


async def test_a_revoked_key_cannot_backdate_a_message(stack: DevStack) -> None:
    """The thief of TH's signing key dates a message half a second before the revocation and
    submits it after: the broker judges by when it receives it, and refuses."""
    th = await connect(stack, "TH-AHTD")
    try:
        # The key must be valid at the forged date, or the test proves nothing.
        await asyncio.sleep(1.0)
        revoked_at = datetime.now(UTC)
        key = next(k for k in th.directory.entry("TH-AHTD").sign_keys
                   if k.key_id == th.identity.signing_key_id)
        forged_date = revoked_at - timedelta(milliseconds=500)
        assert key.valid_at(forged_date)
        root = FederationRoot.load(stack.data_dir / "keys" / "root.key", stack.passphrase())
        signed_list = root.sign_revocations(RevocationList(
            serial=1, issued_at=revoked_at, revocations=[Revocation(
                key_id=th.identity.signing_key_id, agency="TH-AHTD", revoked_at=revoked_at,
                reason="key compromise")]))
        for b in stack.brokers:
            b.directory.set_revocations(signed_list)
        header, wire = signed(th, ["KH-AHTJP"], created_at=forged_date)
        await th.js.publish(s.submit("TH-AHTD"), wire, headers={"Nats-Msg-Id": header.id})
        outcome = await th.wait_outcome(header.id)
        assert outcome.status == "rejected" and not outcome.delivered
        assert (outcome.error or "").startswith("sender.key"), outcome.error
    finally:
        await th.close()
