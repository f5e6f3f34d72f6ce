"""Each received message is decoded once on the agency's side (issue 18).

The schemas' decoders, the body encoder and the store's decryption are wrapped with
counters wherever a module holds them (calls from the in-process broker not counted);
then one message is received (`Holder.sync`) and opened (`Holder.open`, which signs
the acknowledgment). The envelope, the header and
the body are each decoded once, the body is stored as sealed (never re-encoded) and the
row just stored is never decrypted again. A later read from the store (another command,
e.g. `orcon show`) decrypts the row once and decodes each part once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import broker
import clients.sdk.store
import schemas
from broker.hosting.stack import DevStack
from clients.sdk.holder import Holder
from clients.sdk.store import Row
from schemas import Category, Level, examples
from tests.support.counting import called_from, wrap_everywhere

HolderFactory = Callable[[str], Awaitable[Holder]]


BROKER = str(Path(broker.__file__).parent)


class Counted:
    """Calls of the wrapped functions that concern one message id."""

    def __init__(self) -> None:
        self.mid: str | None = None
        self.report: schemas.Body | None = None
        self.header_bytes = b""  # the message's signed header, as the sender sealed it
        self.calls: Counter[str] = Counter()

    def wrap(self, monkeypatch: pytest.MonkeyPatch, name: str, original: Any,
             concerns: Callable[[tuple[Any, ...], Any], bool]) -> None:
        def seen(args: tuple[Any, ...], result: Any) -> None:
            # The dev stack's broker runs in this process: its decodes are the other side's.
            if self.mid is not None and concerns(args, result) and not called_from(BROKER):
                self.calls[name] += 1

        wrap_everywhere(monkeypatch, original, seen)


def _install(c: Counted, monkeypatch: pytest.MonkeyPatch) -> None:
    c.wrap(monkeypatch, "envelope", schemas.decode_envelope,
           lambda a, env: bool(env.header == c.header_bytes))
    c.wrap(monkeypatch, "header", schemas.decode_header,
           lambda a, header: bool(header.id == c.mid))
    c.wrap(monkeypatch, "body", schemas.decode_body,
           lambda a, body: bool(body == c.report))
    c.wrap(monkeypatch, "body encoded", schemas.encode,
           lambda a, _: bool(c.report is not None and a and a[0] == c.report))
    c.wrap(monkeypatch, "row decrypted", clients.sdk.store._open_raw,
           lambda a, _: bool(a[2] == (c.mid or "").encode()))


async def _receive(th: Holder, kh: Holder, c: Counted) -> tuple[str, Row]:
    report = examples.mekong_route_report()
    sent = await th.send(report, category=Category.ROUTES, level=Level.RESTRICTED,
                         to=["KH-AHTJP"])
    kept = th.store.get(sent.id)  # the sender's copy: the header bytes it signed
    assert kept is not None
    c.header_bytes = kept.record.header
    c.mid, c.report = sent.id, report  # counting starts: the recipient's side only
    for _ in range(20):  # bounded: the delivery arrives within a second or two
        got = await kh.sync(timeout=0.5)
        assert got.rejected == []
        if got.new:
            (row,) = got.new
            return sent.id, row
    raise AssertionError("the message did not arrive")


async def test_a_received_message_is_decoded_once(
        stack: DevStack, holder: HolderFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    c = Counted()
    _install(c, monkeypatch)
    mid, row = await _receive(th, kh, c)
    assert row.id == mid and row.body == examples.mekong_route_report()
    opened = await kh.open(row)  # reads it and signs the acknowledgment
    assert opened.acked and opened.opened
    assert opened.header.id == mid and opened.restrictions == row.header.restrictions
    assert dict(c.calls) == {"envelope": 1, "header": 1, "body": 1}, c.calls
    assert kh.get(mid).acked  # the flags are the store's too


async def test_a_stored_message_read_again_is_decrypted_and_decoded_once(
        stack: DevStack, holder: HolderFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    c = Counted()
    _install(c, monkeypatch)
    mid, _ = await _receive(th, kh, c)
    c.calls.clear()
    row = await kh.open(mid)  # as `orcon show ID` does: by id, from the store
    assert row.body == examples.mekong_route_report() and row.header.sender == "TH-AHTD"
    assert row.restrictions == row.header.restrictions
    assert dict(c.calls) == {"row decrypted": 1, "envelope": 1, "header": 1, "body": 1}, \
        c.calls
