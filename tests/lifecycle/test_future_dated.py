"""A message dated ahead of the recipient's clock is refused by the recipient's SDK.

The attacker is a rogue broker (or a sender whose clock runs ahead, or who means to):
it delivers a genuinely signed message whose `created_at` lies well in the future. The
broker itself refuses such a submission (`created_at.window`, its own clock), but the
SDK trusts no broker: a message dated ahead would stay "fresh" past the replay window
and sort after what was really sent later. The SDK allows the same clock skew as the
broker (`schemas.message.MAX_CLOCK_SKEW`), measured on its own injectable clock, and
names the field, the value and the rule when it refuses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import msgspec
import pytest

import schemas
from broker.hosting.stack import DevStack
from broker.routing.service import BrokerConfig
from clients.sdk.holder import Holder
from clients.sdk.opening import Rejection, open_delivery, parse_delivery
from keys.directory import Directory
from keys.envelope import for_recipient, seal
from keys.identity import Identity
from schemas import Category, Level
from schemas.message import MAX_CLOCK_SKEW, CreatedAhead
from tests.lifecycle.test_forward_checks import FORWARDER, ORIGINATOR, _forward
from tests.support.keys import NOW, make_federation
from transport import subjects as s

HolderFactory = Callable[[str], Awaitable[Holder]]
SENDER, RECIPIENT = "TH-AHTD", "LA-MPS"


def _report() -> schemas.IntelReport:
    return schemas.IntelReport(title="route",
                               narrative=schemas.Narrative(text="secret", lang="en"))


def _dated(sender: Holder, recipient: str, created_at: datetime) -> bytes:
    """An envelope signed by `sender` for `recipient`, claiming `created_at`, as the
    broker would deliver it."""
    c = sender.client
    header = c.draft(_report(), category=Category.ROUTES, level=Level.RESTRICTED,
                     to=[recipient])
    header = msgspec.structs.replace(header, created_at=created_at,
                                     id=schemas.new_message_id(created_at))
    env = seal(schemas.encode(header), schemas.encode(_report()),
               c.directory.recipients_for(recipient, c.clock()), c.identity)
    return schemas.encode_envelope(for_recipient(env, recipient))


async def _deliver(stack: DevStack, to: Holder, data: bytes, tag: str
                   ) -> tuple[list[schemas.Header], list[Rejection]]:
    """Publish one delivery as a (rogue) broker would; what the recipient's SDK made of it."""
    nc = await stack.broker_connection("rogue")
    try:
        await nc.jetstream().publish(s.deliver(to.agency), data,
                                     headers={"Nats-Msg-Id": f"rogue-{tag}"})
    finally:
        await nc.close()
    new: list[schemas.Header] = []
    rejected: list[Rejection] = []
    for _ in range(10):  # bounded: the delivery arrives within a second or two
        got = await to.sync(timeout=0.5)
        new += [r.header for r in got.new]
        rejected += got.rejected
        if new or rejected:
            break
    return new, rejected


async def test_a_message_dated_an_hour_ahead_is_refused(
        stack: DevStack, holder: HolderFactory) -> None:
    th, la = await holder(SENDER), await holder(RECIPIENT)
    ahead = la.client.clock() + timedelta(hours=1)
    new, rejected = await _deliver(stack, la, _dated(th, RECIPIENT, ahead), "ahead")
    assert new == [], "the SDK accepted a message dated an hour ahead of its clock"
    assert [r.reason for r in rejected if "created_at" in r.reason], rejected
    assert list(la.store.query()) == [], "a refused message was stored"


async def test_a_forward_whose_notice_is_dated_ahead_is_refused(
        stack: DevStack, holder: HolderFactory) -> None:
    th, kh, vn = await holder(ORIGINATOR), await holder(FORWARDER), await holder("VN-MPS")
    clock = kh.client.clock
    kh.client.clock = lambda: clock() + timedelta(hours=1)  # the forwarder dates ahead
    new, rejected = await _deliver(stack, vn, _forward(th, kh, "VN-MPS"), "fwd-ahead")
    assert new == [], "the SDK accepted a forward whose notice is dated ahead"
    assert [r.reason for r in rejected if "created_at" in r.reason], rejected


async def test_a_message_within_the_allowed_skew_is_opened(
        stack: DevStack, holder: HolderFactory) -> None:
    """The control: the same forge a little less ahead than the allowance opens, so the
    refusals above come from the rule and not from a broken forge."""
    th, la = await holder(SENDER), await holder(RECIPIENT)
    ahead = la.client.clock() + MAX_CLOCK_SKEW - timedelta(seconds=30)
    new, rejected = await _deliver(stack, la, _dated(th, RECIPIENT, ahead), "skew")
    assert rejected == [] and [h.created_at for h in new] == [ahead]


# ---- the rule itself, on the pure opening function -----------------------------------


def _sealed_at(created_at: datetime) -> tuple[bytes, Identity, Directory]:
    fed = make_federation("TH-AHTD", "LA-MPS")
    th, la = fed.idents["TH-AHTD"], fed.idents["LA-MPS"]
    header = schemas.Header(
        v=schemas.SCHEMA_VERSION, id=schemas.new_message_id(created_at),
        kind="intel_report", sender="TH-AHTD", sender_key=th.signing_key_id,
        created_at=created_at, category=Category.ROUTES, level=Level.RESTRICTED,
        restrictions=schemas.Restrictions(), recipients=["LA-MPS"])
    env = seal(schemas.encode(header), schemas.encode(_report()),
               fed.directory.recipients_for("LA-MPS", NOW), th)
    return schemas.encode_envelope(env), la, fed.directory


@pytest.mark.parametrize("ahead", [MAX_CLOCK_SKEW + timedelta(microseconds=1),
                                   timedelta(days=365)])
def test_the_refusal_names_the_field_the_value_and_the_rule(ahead: timedelta) -> None:
    created_at = NOW + ahead
    data, la, directory = _sealed_at(created_at)
    delivery = parse_delivery(data)
    assert not isinstance(delivery, Rejection)
    got = open_delivery(delivery, identity=la, directory=directory, now=NOW,
                        replay_window=timedelta(days=30))
    assert isinstance(got, Rejection) and isinstance(got.error, CreatedAhead)
    (err,) = got.error.errors
    assert (err.path, err.rule) == ("header.created_at", "created_at.skew")
    assert created_at.isoformat() in err.message and "5 min" in err.message
    assert got.reason == str(got.error) and got.message_id == delivery.id


def test_exactly_the_allowance_ahead_is_accepted_like_the_broker() -> None:
    """The boundary is the broker's (`created_at <= now + skew` passes there too)."""
    data, la, directory = _sealed_at(NOW + MAX_CLOCK_SKEW)
    delivery = parse_delivery(data)
    assert not isinstance(delivery, Rejection)
    got = open_delivery(delivery, identity=la, directory=directory, now=NOW,
                        replay_window=timedelta(days=30))
    assert not isinstance(got, Rejection), got


def test_the_broker_and_the_sdk_allow_the_same_skew() -> None:
    assert BrokerConfig().created_at_max_skew == MAX_CLOCK_SKEW
