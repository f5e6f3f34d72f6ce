"""`orcon list` and the console say the same state for every message, on both sides:
one rule (`Holder.state`). They used to differ: a sent message its recipient had
acknowledged was "delivered" in the CLI and "acknowledged" in the console, and a consent
request answered by a decision about another request still counted as answered in the
CLI. The console's filters, like the CLI's options, refuse a value outside their
vocabulary. Real nats-server, broker, `orcon` commands and stores."""

from __future__ import annotations

import asyncio
from pathlib import Path

from broker.hosting.stack import DevStack
from clients.console.desk import Desk
from clients.sdk.holder import Holder
from schemas import Category, Level, Purpose, Restrictions, examples
from schemas.codes import ConsentScope
from tests.support.cli import cli, json_out

TH, KH = "TH-AHTD", "KH-AHTJP"


async def _open(stack: DevStack, agency: str) -> Holder:
    """The agency's Holder on the store `orcon` keeps (DATA_DIR/stores/AGENCY.db)."""
    assert stack.connection is not None
    return await Holder.open_for(stack.connection, agency,
                                 stack.data_dir / "stores" / f"{agency}.db",
                                 passphrase=stack.passphrase())


async def _sync_until(h: Holder, ids: set[str], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not all(h.store.has(i) for i in ids):
        assert loop.time() < end, f"{h.agency}: not all of {ids} arrived"
        await h.sync(timeout=0.3)


async def _states(stack: DevStack, agency: str) -> tuple[dict[str, str], dict[str, str]]:
    """(what `orcon list` says, what the console's desk says), by message id."""
    listed = {r["id"]: r["state"] for r in json_out(
        await cli(stack)("list", "--as", agency, "--json"))}
    h = await _open(stack, agency)
    try:
        desk = Desk(h, stack.connection)  # type: ignore[arg-type]
        shown = {v.row.id: v.state for d in ("in", "out") for v in desk.messages(d)}
    finally:
        await h.close()
    return listed, shown


async def test_cli_and_console_say_the_same_state(stack: DevStack, tmp_path: Path) -> None:
    th, kh = await _open(stack, TH), await _open(stack, KH)
    try:
        send = {"category": Category.ROUTES, "level": Level.RESTRICTED, "to": [KH]}
        untouched = await th.send(examples.mekong_route_report(), **send)
        acked = await th.send(examples.mekong_route_report(), **send)
        used = await th.send(examples.mekong_route_report(), **send)
        asked = await th.send(examples.mekong_route_report(),
                              restrictions=Restrictions(no_evidential_use=True), **send)
        await _sync_until(kh, {untouched.id, acked.id, used.id, asked.id})
        await kh.open(acked.id)
        await kh.use(used.id, Purpose.SMUGGLING_OF_MIGRANTS)
        # Two requests about one message; the originator decides only the first.
        first = await kh.request_consent(asked.id, ConsentScope.EVIDENTIAL_USE,
                                         justification="trial")
        await kh.request_consent(asked.id, ConsentScope.PUBLIC_DISCLOSURE,
                                 justification="press")
        await _sync_until(th, {first.id})
        await th.grant(first.id)
        acts = {r.id for r in kh.store.query("direction = 'out'")}
        await _sync_until(th, acts)
        await _sync_until(kh, {r.id for r in th.store.query("kind = 'consent_decision'")})
    finally:
        await th.close()
        await kh.close()

    expected = {untouched.id: ("new", "delivered"), acked.id: ("acknowledged", "acknowledged"),
                used.id: ("used", "used"), asked.id: ("consent pending", "consent pending")}
    for agency, side in ((KH, 0), (TH, 1)):
        listed, shown = await _states(stack, agency)
        assert listed == shown, agency
        assert {mid: listed[mid] for mid in expected} == \
            {mid: want[side] for mid, want in expected.items()}, agency


async def test_a_filter_outside_its_vocabulary_is_refused_not_an_empty_inbox(
        stack: DevStack) -> None:
    from clients.sdk.holder import LifecycleError

    h = await _open(stack, KH)
    try:
        desk = Desk(h, stack.connection)  # type: ignore[arg-type]
        for name, value in (("kind", "intel-report"), ("state", "unread"), ("level", "SECRET!"),
                            ("tlp", "AMBER-STRICT"), ("urgency", "high")):
            try:
                desk.messages("in", **{name: value})
            except LifecycleError as exc:
                assert exc.rule == f"filter.{name}" and value in exc.reason, exc
            else:
                raise AssertionError(f"{name}={value!r} was read as 'nothing matches'")
        assert desk.messages("in", kind="intel_report", tlp="none", state="new") == []
    finally:
        await h.close()
