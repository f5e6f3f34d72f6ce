"""Waiting for one outcome never loses the others (issue 18).

The broker reports outcomes in order on one consumer: waiting for the second message's
outcome fetches the first one's too. It stays unclaimed for whoever asks next, whether
through the bare SDK client or a Holder, and nothing is reported twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from clients.sdk.client import AgencyClient
from clients.sdk.holder import Holder
from schemas import Category, Level, examples


async def _two(send: Callable[..., Awaitable[object]]) -> tuple[object, object]:
    kw = {"category": Category.ROUTES, "level": Level.RESTRICTED, "to": ["KH-AHTJP"]}
    return await send(examples.mekong_route_report(), **kw), \
        await send(examples.mekong_route_report(), **kw)


async def test_the_client_keeps_outcomes_fetched_while_waiting_for_another(
        agency: Callable[[str], Awaitable[AgencyClient]]) -> None:
    th = await agency("TH-AHTD")
    first, second = await _two(th.send)
    ids = [first.header.id, second.header.id]  # type: ignore[attr-defined]
    assert (await th.wait_outcome(ids[1])).delivered == ["KH-AHTJP"]
    # The first outcome was fetched on the way: still there, and only once.
    assert (await th.wait_outcome(ids[0], timeout=3)).delivered == ["KH-AHTJP"]
    assert [o.message_id for o in await th.outcomes(timeout=0.5)] == []


async def test_outcomes_returns_what_a_wait_fetched_first(
        agency: Callable[[str], Awaitable[AgencyClient]]) -> None:
    th = await agency("TH-AHTD")
    first, second = await _two(th.send)
    await th.wait_outcome(second.header.id)  # type: ignore[attr-defined]
    assert [o.message_id for o in await th.outcomes(timeout=3)] == [
        first.header.id]  # type: ignore[attr-defined]


async def test_a_holder_waits_on_the_same_unclaimed_outcomes(
        holder: Callable[[str], Awaitable[Holder]]) -> None:
    th = await holder("TH-AHTD")
    first, second = await _two(th.send)
    assert (await th.wait_outcome(second.id)).delivered == ["KH-AHTJP"]  # type: ignore[attr-defined]
    await th.sync(timeout=0.2)  # a sync fetches reports too: kept unclaimed as well
    assert (await th.wait_outcome(first.id, timeout=3)).delivered == [  # type: ignore[attr-defined]
        "KH-AHTJP"]
    assert th.reports == []
    # Both outcomes are kept with the sent copies as well.
    for sent in (first, second):
        row = th.get(sent.id)  # type: ignore[attr-defined]
        assert row.record.outcome is not None and row.record.outcome.delivered == ["KH-AHTJP"]


async def test_a_malformed_report_is_dropped_not_redelivered_for_ever(  # type: ignore[no-untyped-def]
        stack, agency) -> None:
    """A report the client cannot read (a broker defect, or bytes nobody should have
    stored) is dropped and logged; the outcomes after it still arrive, and it does not
    come back to block every later command."""
    from transport import subjects as s

    th: AgencyClient = await agency("TH-AHTD")
    nc = await stack.broker_connection("test-bad-report")
    try:
        await nc.jetstream().publish(s.report("TH-AHTD"), b"\xc1 not an outcome")
    finally:
        await nc.close()
    sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.RESTRICTED, to=["KH-AHTJP"])
    assert (await th.wait_outcome(sent.header.id)).delivered == ["KH-AHTJP"]
    assert await th.poll_outcomes(timeout=0.5) == 0  # the bad one is not redelivered
