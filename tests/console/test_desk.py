"""The console's desk against the real stack, without a browser: states as the life cycle
moves, expiry purged while the console runs, pickers that offer no auditor, and the
restrictions in plain words (TLP presets spelled out)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.hosting.stack import DevStack
from clients.console.desk import Desk, restrictions_in_words
from clients.sdk.holder import Holder
from policies.federation import load_federation
from schemas import TLP, Category, Level, Purpose, Restrictions, examples
from schemas.codes import ConsentScope

DeskFactory = Callable[[str], Awaitable[Desk]]


@pytest.fixture
async def desk(stack: DevStack, tmp_path: Path) -> AsyncIterator[DeskFactory]:
    opened: list[Desk] = []

    async def make(agency: str) -> Desk:
        assert stack.connection is not None
        h = await Holder.open_for(stack.connection, agency, tmp_path / f"{agency}.db",
                                  passphrase=stack.passphrase())
        d = Desk(h, stack.connection, load_federation(stack.connection.federation))
        opened.append(d)
        return d

    yield make
    for d in opened:
        await d.stop()
        await d.holder.close()


async def _until(pred: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError(f"not reached: {what}")
        await asyncio.sleep(0.1)


async def test_states_follow_the_life_cycle(desk: DeskFactory) -> None:
    th, kh = await desk("TH-AHTD"), await desk("KH-AHTJP")
    th.start(poll=0.2)
    kh.start(poll=0.2)
    feed = kh.listen()
    sent = await th.holder.send(examples.mekong_route_report(), category=Category.ROUTES,
                                level=Level.CONFIDENTIAL, to=["KH-AHTJP"],
                                restrictions=Restrictions(no_evidential_use=True))
    assert await asyncio.wait_for(feed.get(), timeout=10) == ("message", sent.id)
    assert [v.state for v in kh.messages("in")] == ["new"]
    # A sent message is "sent" until the broker's outcome says "delivered" (`Holder.state`).
    assert [v.state for v in th.messages("out")] in (["sent"], ["delivered"])
    async with kh.lock:
        await kh.holder.open(sent.id)
    assert kh.message(sent.id)[0].state == "acknowledged"
    await _until(lambda: th.messages("out")[0].state == "acknowledged", "ack at sender")
    assert th.messages("out")[0].progress == "acknowledged by 1 of 1"
    async with kh.lock:
        await kh.holder.request_consent(sent.id, ConsentScope.EVIDENTIAL_USE,
                                        justification="trial")
    assert kh.message(sent.id)[0].state == "consent pending"
    await _until(lambda: th.messages("out")[0].state == "consent pending", "request at sender")
    received, _ = th.consent_requests()
    async with th.lock:
        await th.holder.grant(received[0][0].id)
    await _until(lambda: kh.message(sent.id)[0].state == "acknowledged", "decision at holder")
    async with kh.lock:
        await kh.holder.use(sent.id, Purpose.PROSECUTION, evidential=True)
    assert kh.message(sent.id)[0].state == "used"
    assert [v.row.id for v in kh.messages("in", state="used")] == [sent.id]
    assert kh.messages("in", state="new") == []
    kh.unlisten(feed)


async def test_expired_message_is_purged_while_the_console_runs(desk: DeskFactory) -> None:
    th, kh = await desk("TH-AHTD"), await desk("KH-AHTJP")
    expires = datetime.now(UTC) + timedelta(seconds=3)
    sent = await th.holder.send(examples.mekong_route_report(), category=Category.ROUTES,
                                level=Level.CONFIDENTIAL, to=["KH-AHTJP"],
                                restrictions=Restrictions(expires_at=expires))
    kh._task = asyncio.create_task(kh._sync_loop(0.2, purge_every=0.5))
    await _until(lambda: kh.holder.store.has(sent.id), "delivered")
    await _until(lambda: not kh.holder.store.has(sent.id), "purged after expiry", timeout=15)
    assert datetime.now(UTC) >= expires


async def test_pickers_offer_no_auditor_and_no_self(desk: DeskFactory) -> None:
    th = await desk("TH-AHTD")
    parties = th.parties()
    assert "KH-AHTJP" in parties["agencies"]
    assert "XX-AUDIT" not in parties["agencies"] and "TH-AHTD" not in parties["agencies"]
    assert "COMMIT" in parties["groups"] and "MM" in parties["countries"]


def test_restrictions_in_plain_words_spell_out_tlp() -> None:
    words = dict(restrictions_in_words(Restrictions(tlp=TLP.RED,
                                                    purposes=[Purpose.INVESTIGATION]), "TH-AHTD"))
    assert "named recipients only" in words["restriction.tlp"]
    assert "without TH-AHTD's consent" in words["restriction.no_onward_dissemination"]
    assert "restriction.not_to_suspects" in words
    assert words["restriction.purpose"] == "Use only for: investigation."
    assert restrictions_in_words(Restrictions(), "X") == []
