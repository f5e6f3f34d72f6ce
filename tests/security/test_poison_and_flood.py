"""Poison submissions and floods from a hostile member agency, against a real nats-server
and the real broker (issue 13, "poison submissions jam routing", "no per-agency limits").

- A submission that made `route()` raise was left unacknowledged and redelivered for
  ever: a naive datetime in a forward's restrictions, a header nested 1,000 deep (no
  valid signature needed), 120,000 invented recipients. Each must now get a typed
  rejection, be acknowledged (nothing left in the SUBMIT work queue, no redelivery) and
  leave the broker routing.
- Any other exception in routing (a defect nobody found yet) becomes a rejection with
  rule `internal`, an audit event, and an acknowledgment.
- One agency's flood of junk does not hold up another agency's message; the junk is
  audited as a few bounded, aggregated records, not one entry per junk message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

import schemas
from broker.hosting.stack import DevStack
from broker.routing.streams import SUBMIT_MAX_DELIVER, stream_configs
from clients.sdk.holder import ForwardRefused, Holder
from schemas import Category, Level, Restrictions, examples
from schemas.events import EventType
from tests.support.attacks import (
    audit_events,
    connect,
    signed,
    submit_queue,
    wait_audit,
    wait_outcomes,
)
from transport import subjects as s


def _deep_envelope(depth: int) -> bytes:
    """An envelope whose header holds a list nested `depth` deep (and a readable id)."""
    nested = b"\x91" * depth + b"\xc0"
    header = (b"\x83" + msgspec.msgpack.encode("v") + msgspec.msgpack.encode("1.0")
              + msgspec.msgpack.encode("id") + msgspec.msgpack.encode(schemas.new_message_id())
              + msgspec.msgpack.encode("topics") + nested)
    return msgspec.msgpack.encode([1, header, bytes(64), [], bytes(40)])


async def _settled_queue(stack: DevStack) -> tuple[int, int]:
    """(stored, redelivered) once nothing is stored, or after 5 s. The broker
    acknowledges a submission right after its outcome (or dead letter) is stored, so a
    test can see that a moment before the server has the acknowledgment."""
    stored, redelivered = await submit_queue(stack)
    for _ in range(50):
        if stored == 0:
            break
        await asyncio.sleep(0.1)
        stored, redelivered = await submit_queue(stack)
    return stored, redelivered


async def _assert_drained(stack: DevStack) -> None:
    stored, redelivered = await _settled_queue(stack)
    assert stored == 0, f"{stored} submissions still waiting for an acknowledgment"
    assert redelivered == 0, f"{redelivered} redeliveries: a submission was not acknowledged"


async def test_deeply_nested_header_is_a_typed_rejection(stack: DevStack) -> None:
    th = await connect(stack, "TH-AHTD")
    try:
        await th.js.publish(s.submit("TH-AHTD"), _deep_envelope(1000),
                            headers={"Nats-Msg-Id": "deep-1"})
        got = await wait_outcomes(th, lambda o: len(o) >= 1)
        assert [o.status for o in got] == ["rejected"], got
        assert (got[0].error or "").startswith("limits.depth"), got[0].error
        assert "header" in (got[0].error or "")
        await _assert_drained(stack)
        sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                             level=Level.RESTRICTED, to=["KH-AHTJP"])
        assert (await th.wait_outcome(sent.header.id)).delivered == ["KH-AHTJP"]
    finally:
        await th.close()


async def test_a_submission_dressed_as_a_status_message_is_still_routed(
        stack: DevStack) -> None:
    """A submitter may set any NATS header, also `Status: 408`. nats-py's `fetch` takes a
    message with a Status header for the server's own status and discards it (before
    issue 19 the submission was never acknowledged and the sender never answered); the
    broker tells a status by its missing reply subject instead."""
    th = await connect(stack, "TH-AHTD")
    try:
        header, wire = signed(th, ["KH-AHTJP"])
        await th.js.publish(s.submit("TH-AHTD"), wire,
                            headers={"Nats-Msg-Id": header.id, "Status": "408",
                                     "Description": "Request Timeout"})
        outcome = await th.wait_outcome(header.id, timeout=20)
        assert outcome.status == "routed" and outcome.delivered == ["KH-AHTJP"], outcome
        await _assert_drained(stack)
    finally:
        await th.close()


async def test_120000_invented_recipients_are_a_typed_rejection(stack: DevStack) -> None:
    th = await connect(stack, "TH-AHTD")
    try:
        invented = sorted(f"Q{i:05d}" for i in range(120_000))
        header, wire = signed(th, ["KH-AHTJP"], recipients=["KH-AHTJP", *invented])
        assert len(wire) < 1024 * 1024  # below the size limit: the count must catch it
        await th.js.publish(s.submit("TH-AHTD"), wire, headers={"Nats-Msg-Id": header.id})
        outcome = await th.wait_outcome(header.id, timeout=20)
        assert outcome.status == "rejected" and not outcome.delivered
        assert (outcome.error or "").startswith("limits.items"), outcome.error
        assert "recipients" in (outcome.error or "")
        await _assert_drained(stack)
    finally:
        await th.close()


async def test_naive_datetime_in_forward_restrictions_is_a_typed_rejection(
        stack: DevStack, tmp_path: Path) -> None:
    assert stack.connection is not None
    holders = [await Holder.open_for(stack.connection, a, tmp_path / f"{a}.db",
                                     passphrase=stack.passphrase())
               for a in ("TH-AHTD", "KH-AHTJP")]
    th, kh = holders
    try:
        expires = datetime.now(UTC) + timedelta(days=1)
        info = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                             level=Level.RESTRICTED, to=["KH-AHTJP"],
                             restrictions=Restrictions(expires_at=expires))
        for _ in range(20):
            if any(r.id == info.id for r in (await kh.sync(timeout=0.5)).new):
                break
        naive = Restrictions(expires_at=datetime(2030, 1, 1))  # no zone: which clock?
        with pytest.raises(ForwardRefused) as refused:
            await kh.forward(info.id, "VN-MPS", restrictions=naive, check=False)
        assert refused.value.rule == "rejected"
        assert refused.value.reason.startswith("schema"), refused.value.reason
        assert "expires_at" in refused.value.reason
        await _assert_drained(stack)
    finally:
        for h in holders:
            await h.close()


async def test_unexpected_error_in_routing_is_rejected_audited_and_acknowledged(
        stack: DevStack) -> None:
    """A defect in a dependency (here the policy engine raising for one recipient)
    stands in for any bug not found yet: the sender hears `internal`, the log records
    it, the submission is acknowledged, and everything else keeps flowing."""
    broker = stack.brokers[0]
    engine: Any = broker.engine
    real = engine.decide_receive

    def defective(header: schemas.Header, recipients: Any, now: datetime) -> Any:
        if "LA-MPS" in header.recipients:
            raise RuntimeError("a defect nobody has found yet")
        return real(header, recipients, now)

    engine.decide_receive = defective
    th = await connect(stack, "TH-AHTD")
    try:
        bad = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                            level=Level.RESTRICTED, to=["LA-MPS"], resolve=False)
        outcome = await th.wait_outcome(bad.header.id)
        assert outcome.status == "rejected" and not outcome.delivered
        assert (outcome.error or "").startswith("internal"), outcome.error
        assert "defect nobody" not in (outcome.error or "")  # internals stay internal
        good = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                             level=Level.RESTRICTED, to=["KH-AHTJP"])
        assert (await th.wait_outcome(good.header.id)).delivered == ["KH-AHTJP"]
        entries = await wait_audit(stack, lambda es: any(
            e.rule == "internal" for _, e in es))
        internal = [e for _, e in entries if e.rule == "internal"]
        assert [(e.type, e.actor, e.message_id) for e in internal] == \
            [(EventType.REJECTED, "TH-AHTD", bad.header.id)]
        await _assert_drained(stack)
    finally:
        engine.decide_receive = real
        await th.close()


async def test_rejected_junk_is_audited_as_bounded_aggregates(stack: DevStack) -> None:
    """Junk (unauthenticated: undecodable, oversize text) is told to its sender one by
    one, but the append-only log gets a few aggregated records (count per sender and
    rule per interval), each small whatever the attacker sent."""
    # A few records per interval whatever the count; a longer interval than the default
    # keeps the bound below independent of how fast a loaded machine rejects.
    stack.brokers[0].config.tally_interval_s = 3.0
    th = await connect(stack, "TH-AHTD")
    before = len(await audit_events(stack))
    n_noise, big_text = 300, "A" * (900 * 1024)
    try:
        for i in range(n_noise):
            noise = b"\xc1junk" + os.urandom(64) + bytes([i % 256])
            await th.nc.publish(s.submit("TH-AHTD"), noise)
        # ~900 KiB of attacker text in one header field (the reproduction).
        huge = msgspec.msgpack.encode([1, msgspec.msgpack.encode({"v": big_text}), bytes(64),
                                       [], bytes(40)])
        await th.nc.publish(s.submit("TH-AHTD"), huge)
        await th.nc.flush()
        outcomes = await wait_outcomes(th, lambda o: len(o) >= n_noise + 1, timeout=30)
        assert len(outcomes) == n_noise + 1
        assert all(o.status == "rejected" for o in outcomes)
        assert max(len(o.error or "") for o in outcomes) <= 1024

        def counted(es: list[Any]) -> int:
            return sum(int(e.details.get("count", "1")) for _, e in es[before:]
                       if e.type == EventType.REJECTED and e.actor == "TH-AHTD")

        entries = await wait_audit(stack, lambda es: counted(es) >= n_noise + 1, timeout=20)
        ours = [(size, e) for size, e in entries[before:]
                if e.type == EventType.REJECTED and e.actor == "TH-AHTD"]
        assert counted(entries) == n_noise + 1
        assert len(ours) <= 10, f"{len(ours)} audit entries for {n_noise + 1} junk submissions"
        assert max(size for size, _ in ours) <= 4096
        assert all(big_text[:2000] not in (e.reason or "") for _, e in ours)
        await _assert_drained(stack)
    finally:
        await th.close()


async def test_a_flood_from_one_agency_does_not_hold_up_another(stack: DevStack) -> None:
    """TH floods junk; KH's message, published while thousands of junk submissions
    are queued ahead of it, is routed before most of them (per-agency fair scheduling).
    With one first-in-first-out queue it waited for every one of them."""
    flood = 50_000
    th, kh = await connect(stack, "TH-AHTD"), await connect(stack, "KH-AHTJP")
    try:
        junk = b"\xc1" + b"junk" * 16
        for _ in range(flood):
            await th.nc.publish(s.submit("TH-AHTD"), junk)
        await th.nc.flush()
        queued, _ = await submit_queue(stack)
        rejected_before = _rejections(stack)
        assert queued >= 1000, "the flood was not queued: the test would prove nothing"
        sent = await kh.send(examples.mekong_route_report(), category=Category.ROUTES,
                             level=Level.RESTRICTED, to=["TH-AHTD"])
        outcome = await kh.wait_outcome(sent.header.id, timeout=60)
        passed_by_victim = queued - (_rejections(stack) - rejected_before)
        assert outcome.delivered == ["TH-AHTD"]
        assert passed_by_victim > queued // 2, \
            f"the victim waited for {queued - passed_by_victim} of {queued} queued junk"
    finally:
        await th.close()
        await kh.close()


async def test_a_flooding_agencys_junk_is_paced_by_its_budget_and_never_dropped(
        stack: DevStack) -> None:
    """Each junk submission (one that fails before or at verification) costs the broker a
    decode and a signature check. An agency may cost it `junk_burst` of them at once and
    `junk_per_s` after that: beyond, its submissions wait in its own queue (nothing is
    dropped, each still gets its typed rejection and is counted in the aggregated audit
    record), while another agency's messages are routed at once. The broker's clock is
    frozen here, so the budget does not refill until the test moves it on."""
    broker = stack.brokers[0]
    frozen = [datetime.now(UTC)]
    broker.config.clock = lambda: frozen[0]
    broker.config.junk_burst, broker.config.junk_per_s = 20, 10.0
    stack.brokers[0].config.tally_interval_s = 0.2
    n = 100
    th, kh = await connect(stack, "TH-AHTD"), await connect(stack, "KH-AHTJP")
    try:
        for i in range(n):
            await th.nc.publish(s.submit("TH-AHTD"), b"\xc1junk" + bytes([i]))
        await th.nc.flush()
        first = await wait_outcomes(th, lambda o: len(o) >= 20)
        sent = await kh.send(examples.mekong_route_report(), category=Category.ROUTES,
                             level=Level.RESTRICTED, to=["TH-AHTD"])
        assert (await kh.wait_outcome(sent.header.id, timeout=30)).delivered == ["TH-AHTD"]
        first += await th.outcomes(limit=500, timeout=1.0)
        assert len(first) == 20, f"{len(first)} junk submissions handled on a budget of 20"
        queued, _ = await submit_queue(stack)
        assert queued == n - 20  # waiting, not dropped
        rest: list[schemas.Outcome] = []
        for _ in range((n - 20) // 20):
            frozen[0] += timedelta(seconds=2.0)  # the budget refills, up to its burst
            step = await wait_outcomes(th, lambda o: len(o) >= 20, timeout=30)
            step += await th.outcomes(limit=500, timeout=0.5)
            assert len(step) == 20, f"{len(step)} handled on a refill of 20"
            rest += step
        assert len(first) + len(rest) == n
        assert all(o.status == "rejected" and (o.error or "").startswith("schema")
                   for o in first + rest)
        entries = await wait_audit(stack, lambda es: sum(
            int(e.details.get("count", "1")) for _, e in es
            if e.type == EventType.REJECTED and e.actor == "TH-AHTD") >= n)
        assert sum(int(e.details.get("count", "1")) for _, e in entries
                   if e.type == EventType.REJECTED and e.actor == "TH-AHTD") == n
        await _assert_drained(stack)
    finally:
        await th.close()
        await kh.close()


def _rejections(stack: DevStack) -> int:
    total = 0.0
    for metric in stack.metrics.rejected.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                total += sample.value
    return int(total)


async def test_a_submission_that_cannot_be_stored_is_dead_lettered(stack: DevStack) -> None:
    """The one failure routing cannot turn into a rejection is a store that refuses the
    result (here an operator shrank DELIVER's message size below a delivery). After the
    consumer's delivery limit the submission leaves the queue for the dead-letter stream,
    where `orcon ops dead-letters` shows it; a metric counts it and the log names it."""

    broker = stack.brokers[0]
    broker.config.retry_delays = (0.05, 0.1, 0.2)
    ops = await stack.sequencer_connection("test-ops")  # the stream administrator (provision)
    th = await connect(stack, "TH-AHTD")
    deliver = next(c for c in stream_configs() if c.name == s.DELIVER_STREAM)
    try:
        await ops.jetstream().update_stream(dataclasses.replace(deliver, max_msg_size=512))
        header, wire = signed(th, ["KH-AHTJP"])
        await th.js.publish(s.submit("TH-AHTD"), wire, headers={"Nats-Msg-Id": header.id})
        for _ in range(100):
            if _dead_letters(stack) >= 1:
                break
            await asyncio.sleep(0.1)
        assert _dead_letters(stack) == 1
        stored, redelivered = await _settled_queue(stack)
        assert stored == 0  # out of the queue: it blocks nothing any more
        assert redelivered == SUBMIT_MAX_DELIVER - 1
        await ops.jetstream().update_stream(deliver)
        assert stack.connection is not None
        out = subprocess.run(
            [str(Path(sys.executable).parent / "orcon"), "ops", "dead-letters",
             "--data-dir", str(stack.data_dir)],
            capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        assert header.id in out.stdout and "TH-AHTD" in out.stdout, out.stdout
        entries = await wait_audit(stack, lambda es: any(
            e.type == EventType.DEAD_LETTERED for _, e in es))
        assert [(e.actor, e.message_id) for _, e in entries
                if e.type == EventType.DEAD_LETTERED] == [("TH-AHTD", header.id)]
        good = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                             level=Level.RESTRICTED, to=["KH-AHTJP"])
        assert (await th.wait_outcome(good.header.id)).delivered == ["KH-AHTJP"]
    finally:
        await ops.close()
        await th.close()


def _dead_letters(stack: DevStack) -> int:
    value = stack.metrics.registry.get_sample_value("orcon_dead_letters_total")
    return int(value or 0)
