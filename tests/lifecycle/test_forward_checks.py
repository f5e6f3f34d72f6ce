"""A forwarded copy is opened by the same checks as any delivery (issue 18).

The attacker is a compromised broker, possibly colluding with a holder: it delivers a
genuine forward (the originator's signed header and ciphertext, the holder's signed
notice naming the third party) to a third party that the policy would never have let
receive it. Each recipient's SDK checks what it can about itself, whatever path the
message took: excluded by id or country (by the originator or by the forwarder's own
tightening), clearance below the level, outside the replay window, a body whose kind
disagrees with the signed header. Nothing refused is stored; each refusal says why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import msgspec

import schemas
from broker.hosting.stack import DevStack
from clients.sdk.holder import Holder
from keys.envelope import for_recipient, seal
from policies.acts import proof_of
from schemas import Category, Level, Restrictions
from schemas.acts import FORWARD_TAG, Act, ForwardSubmission, encode_forward
from transport import subjects as s

HolderFactory = Callable[[str], Awaitable[Holder]]
ORIGINATOR, FORWARDER = "TH-AHTD", "KH-AHTJP"


def _report() -> schemas.IntelReport:
    return schemas.IntelReport(title="route",
                               narrative=schemas.Narrative(text="secret", lang="en"))


def _forward(th: Holder, kh: Holder, third: str, *, level: Level = Level.RESTRICTED,
             restrictions: Restrictions | None = None,
             tightened: Restrictions | None = None,
             body: schemas.Body | None = None, kind: str | None = None) -> bytes:
    """A forward as the broker would deliver it to `third`: the originator's envelope
    (sealed to the forwarder, with a stanza for `third`) and the forwarder's signed
    notice naming `third` (without stanzas)."""
    body = body or _report()
    oc, fc = th.client, kh.client
    now = oc.clock()
    header = oc.draft(body, category=Category.ROUTES, level=level,
                      restrictions=restrictions, to=[FORWARDER])
    if kind is not None:  # a hostile originator signs a header that lies about the body
        header = msgspec.structs.replace(header, kind=kind)
    keys = [*oc.directory.recipients_for(FORWARDER, now),
            *oc.directory.recipients_for(third, now)]
    original = seal(schemas.encode(header), schemas.encode(body), keys, oc.identity)
    notice_body = schemas.ForwardNotice(message_id=header.id, forwarded_to=[third],
                                        forwarded_at=now)
    act = Act(message_id=header.id, original=proof_of(original), party=third,
              restrictions=tightened)
    draft = fc.draft(notice_body, category=Category.ROUTES, level=level, to=[ORIGINATOR],
                     in_reply_to=header.id, act=act)
    notice = seal(schemas.encode(draft), schemas.encode(notice_body),
                  fc.directory.recipients_for(ORIGINATOR, now), fc.identity)
    return encode_forward(ForwardSubmission(
        tag=FORWARD_TAG, notice=schemas.encode_envelope(for_recipient(notice, third)),
        original=schemas.encode_envelope(for_recipient(original, third))))


async def _deliver_as_rogue_broker(stack: DevStack, third: Holder, data: bytes) -> list[str]:
    """Publish one delivery as a broker would; what the third party's SDK says of it."""
    nc = await stack.broker_connection("rogue")
    try:
        await nc.jetstream().publish(s.deliver(third.agency), data,
                                     headers={"Nats-Msg-Id": f"rogue-{len(data)}"})
    finally:
        await nc.close()
    reasons: list[str] = []
    for _ in range(10):  # bounded: the delivery arrives within a second or two
        got = await third.sync(timeout=0.5)
        assert got.new == [], f"{third.agency} accepted a forwarded copy it must refuse"
        reasons += [r.reason for r in got.rejected]
        if reasons:
            break
    assert list(third.store.query()) == [], "a refused forward was stored"
    return reasons


async def test_forward_to_an_excluded_country_is_refused_by_the_third_party(
        stack: DevStack, holder: HolderFactory) -> None:
    th, kh, mm = await holder(ORIGINATOR), await holder(FORWARDER), await holder("MM-ATIPD")
    data = _forward(th, kh, "MM-ATIPD", restrictions=Restrictions(exclude=["MM"]))
    reasons = await _deliver_as_rogue_broker(stack, mm, data)
    assert any("excluded by the sender (exclude = MM)" in r for r in reasons), reasons


async def test_forward_excluded_by_the_forwarders_tightening_is_refused(
        stack: DevStack, holder: HolderFactory) -> None:
    th, kh, vn = await holder(ORIGINATOR), await holder(FORWARDER), await holder("VN-MPS")
    data = _forward(th, kh, "VN-MPS", tightened=Restrictions(exclude=["VN-MPS"]))
    reasons = await _deliver_as_rogue_broker(stack, vn, data)
    assert any("excluded by the sender (exclude = VN-MPS)" in r for r in reasons), reasons


async def test_forward_above_the_third_partys_clearance_is_refused(
        stack: DevStack, holder: HolderFactory) -> None:
    th, kh, la = await holder(ORIGINATOR), await holder(FORWARDER), await holder("LA-MPS")
    data = _forward(th, kh, "LA-MPS", level=Level.CONFIDENTIAL)
    reasons = await _deliver_as_rogue_broker(stack, la, data)
    assert any("clearance RESTRICTED is below CONFIDENTIAL" in r for r in reasons), reasons


async def test_forward_whose_body_disagrees_with_the_signed_kind_is_refused(
        stack: DevStack, holder: HolderFactory) -> None:
    th, kh, vn = await holder(ORIGINATOR), await holder(FORWARDER), await holder("VN-MPS")
    data = _forward(th, kh, "VN-MPS", kind="alert")
    reasons = await _deliver_as_rogue_broker(stack, vn, data)
    assert any("the body kind disagrees with the signed header" in r for r in reasons), \
        reasons


async def test_forward_notice_outside_the_replay_window_is_refused(
        stack: DevStack, holder: HolderFactory) -> None:
    th, kh, vn = await holder(ORIGINATOR), await holder(FORWARDER), await holder("VN-MPS")
    data = _forward(th, kh, "VN-MPS")
    clock = vn.client.clock
    vn.client.clock = lambda: clock() + timedelta(days=31)  # the default window is 30 days
    reasons = await _deliver_as_rogue_broker(stack, vn, data)
    assert any("replay window" in r for r in reasons), reasons


async def test_the_same_forward_is_opened_when_nothing_forbids_it(
        stack: DevStack, holder: HolderFactory) -> None:
    """The control: the forge above is a valid forward when no check refuses it, so the
    refusals above come from the checks and not from a broken forge."""
    third = "VN-MPS"
    th, kh, vn = await holder(ORIGINATOR), await holder(FORWARDER), await holder(third)
    tighter = Restrictions(exclude=["CN"])
    data = _forward(th, kh, third, tightened=tighter)
    nc = await stack.broker_connection("rogue")
    try:
        await nc.jetstream().publish(s.deliver(third), data,
                                     headers={"Nats-Msg-Id": "rogue-control"})
    finally:
        await nc.close()
    new = []
    for _ in range(10):
        got = await vn.sync(timeout=0.5)
        assert got.rejected == []
        new += got.new
        if new:
            break
    assert [r.sender for r in new] == [ORIGINATOR]
    assert new[0].body == _report() and new[0].restrictions == tighter
