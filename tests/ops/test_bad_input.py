"""Bad input at the broker: each kind of bad submission is refused with a reason the
sender can read (an Outcome with status "rejected") and an audit event naming the rule;
the broker never raises out of `route()` (an exception would mean redelivery of a
poison message, forever), and one agency flooding garbage never delays another's
messages.

Unit cases call the pure `Broker.route()` (no I/O, so a NATS client that never
connects is enough); the end-to-end cases go through a real nats-server."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from nats.aio.client import Client as NATS

import schemas
from broker.audit.events import decode_record
from broker.hosting.stack import DevStack, provision_federation
from broker.routing.service import Broker, BrokerConfig
from clients.sdk.client import AgencyClient
from keys.directory import Directory
from keys.envelope import seal
from keys.identity import Identity
from keys.keyfile import load_identity
from policies.engine import PolicyEngine
from policies.federation import load_federation
from schemas import Category, Level
from schemas.clock import utcnow
from schemas.events import EventType
from tests.support.paths import SAMPLE_FEDERATION as SAMPLE
from transport import subjects as s
from transport.connection import Connection

LIMIT = 64 * 1024


@dataclass
class Fed:
    conn: Connection
    broker: Broker
    ids: dict[str, Identity]
    directory: Directory


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fed]:
    data = tmp_path_factory.mktemp("fed")
    passphrase = "bad-input fixture passphrase"
    conn = provision_federation(data, SAMPLE, now=utcnow(), fast_kdf=True, passphrase=passphrase)
    directory = Directory.load(Path(conn.directory).read_bytes(), bytes.fromhex(conn.root_public))
    ids = {a: load_identity(Path(conn.credentials(a).key or ""), passphrase)
           for a in ("TH-AHTD", "KH-AHTJP")}
    # route() is pure: the client below is never connected, nothing is published.
    broker = Broker(NATS(), PolicyEngine(load_federation(Path(conn.federation))), directory,
                    BrokerConfig(broker_id="unit", max_message_bytes=LIMIT))
    yield Fed(conn, broker, ids, directory)


def _envelope(fed: Fed, sender: str = "TH-AHTD", *, text: str = "x",
              edit: dict[str, object] | None = None) -> bytes:
    """A correctly signed submission; `edit` changes header fields before signing (so
    the signature is valid and only the content is wrong)."""
    ident = fed.ids[sender]
    client = AgencyClient(NATS(), ident, fed.directory)
    body = schemas.IntelReport(title="t", narrative=schemas.Narrative(text=text, lang="en"))
    header = client.draft(body, category=Category.ROUTES, level=Level.RESTRICTED,
                          to=["KH-AHTJP"])
    raw = msgspec.msgpack.decode(schemas.encode(header))
    raw.update(edit or {})
    recipients = fed.directory.recipients_for("KH-AHTJP", client.clock())
    env = seal(msgspec.msgpack.encode(raw), schemas.encode(body), recipients, ident)
    return schemas.encode_envelope(env)


def _rejected(fed: Fed, subject: str, data: bytes) -> tuple[str, schemas.Outcome]:
    routed = fed.broker.route(subject, data)
    out = routed.outcome
    assert out.status == "rejected", out
    assert not routed.deliveries and not out.delivered
    assert out.error and out.error.split(":", 1)[0]
    rule = out.error.split(":", 1)[0]
    # Exactly one audit event, of type rejected, with the same rule and the submitter:
    # its own when the submission was signed, else one aggregate of a count (issue 13:
    # junk is audited as counts per sender and rule, not one entry per submission).
    [(key, event)] = routed.events or fed.broker.rejection_tally()
    assert event.details.get("count", "1") == "1"
    assert event.type == EventType.REJECTED and event.rule == rule
    assert event.actor == s.agency_of(subject)
    assert key.endswith(":rejected")
    return rule, out


TH = s.submit("TH-AHTD")


def test_a_valid_submission_routes(fed: Fed) -> None:
    # The baseline the other cases perturb: without it a broken fixture would make
    # every "rejected" assertion below pass for the wrong reason.
    routed = fed.broker.route(TH, _envelope(fed))
    assert routed.outcome.status == "routed" and routed.outcome.delivered == ["KH-AHTJP"]


@pytest.mark.parametrize("data", [
    b"", b"\x00", b"\xff\xfe garbage", os.urandom(512), b"\x91" * 10_000,
    msgspec.msgpack.encode({"header": "x"}), msgspec.msgpack.encode([1, 2, 3, 4, 5]),
    msgspec.msgpack.encode(["1", b"", b"", [], b""]),
])
def test_garbage_is_rejected_as_schema(fed: Fed, data: bytes) -> None:
    rule, out = _rejected(fed, TH, data)
    # "forward.schema" when the junk happens to look like a forward submission.
    assert rule in ("schema", "forward.schema")
    assert out.sender == "TH-AHTD" and out.message_id == ""


def test_oversize_is_rejected_before_decoding(fed: Fed) -> None:
    big = _envelope(fed, text="A" * (LIMIT + 1))
    rule, out = _rejected(fed, TH, big)
    assert rule == "envelope.size"
    assert str(LIMIT) in (out.error or "")


def test_unknown_sender_is_rejected(fed: Fed) -> None:
    # A header naming an agency the directory does not know, on its own subject (only
    # a compromised account could publish there; the broker still refuses).
    data = _envelope(fed, edit={"sender": "ZZ-NOBODY"})
    rule, _ = _rejected(fed, s.submit("ZZ-NOBODY"), data)
    assert rule == "sender.key"


def test_bad_signature_is_rejected(fed: Fed) -> None:
    env = schemas.decode_envelope(_envelope(fed))
    sig = bytes([env.signature[0] ^ 1]) + env.signature[1:]
    data = schemas.encode_envelope(msgspec.structs.replace(env, signature=sig))
    rule, out = _rejected(fed, TH, data)
    assert rule == "signature"
    assert len(out.message_id) == 26  # the id is still reported, so the sender can match


def test_another_agencys_signature_is_rejected(fed: Fed) -> None:
    # Signed by KH's key but claiming to come from TH: the directory key does not match.
    data = _envelope(fed, "KH-AHTJP", edit={"sender": "TH-AHTD"})
    rule, _ = _rejected(fed, TH, data)
    assert rule in ("signature", "sender.key")


def test_unknown_kind_is_rejected(fed: Fed) -> None:
    rule, out = _rejected(fed, TH, _envelope(fed, edit={"kind": "teleport"}))
    assert rule == "schema"
    assert "kind" in (out.error or "")


def test_header_that_disagrees_with_the_subject_is_rejected(fed: Fed) -> None:
    # KH's genuine, validly signed message replayed on TH's submission subject.
    data = _envelope(fed, "KH-AHTJP", edit={})
    rule, out = _rejected(fed, TH, data)
    assert rule == "sender.subject"
    assert "KH-AHTJP" in (out.error or "") and out.sender == "TH-AHTD"


@pytest.mark.parametrize("edit", [
    {"recipients": ["ZZ-NOBODY"]},
    {"recipients": "KH-AHTJP"},
    {"created_at": "yesterday"},
    {"id": "not-an-id"},
    {"level": "TOP-SECRET"},
    {"v": "99.0"},
])
def test_signed_but_malformed_headers_are_rejected_never_raised(
    fed: Fed, edit: dict[str, object]
) -> None:
    routed = fed.broker.route(TH, _envelope(fed, edit=edit))
    # Whatever the rule, the outcome is a decision, and nothing is delivered to anyone
    # the sender did not seal to.
    assert routed.outcome.status in ("rejected", "routed")
    assert set(routed.deliveries) <= {"KH-AHTJP"}
    if routed.outcome.status == "rejected":
        assert (routed.events or fed.broker.rejection_tally())[0][1].type == EventType.REJECTED


# ---- end to end through nats-server -------------------------------------------------


@pytest.fixture
async def small_stack(tmp_path: Path) -> AsyncIterator[DevStack]:
    async with DevStack(tmp_path / "s", SAMPLE, fast_kdf=True, tls=True,
                        max_message_bytes=LIMIT, head_interval=0.2) as st:
        yield st


async def _audit_events(stack: DevStack) -> list[tuple[str, str | None, str | None, int]]:
    """(type, actor, rule, how many submissions the event stands for)."""
    nc = await stack.broker_connection("audit-reader")
    try:
        js = nc.jetstream()
        info = await js.stream_info(s.AUDIT_STREAM)
        out: list[tuple[str, str | None, str | None, int]] = []
        for seq in range(1, info.state.last_seq + 1):
            msg = await js.get_msg(s.AUDIT_STREAM, seq)
            ev = decode_record(msg.data or b"").event
            out.append((str(ev.type), ev.actor, ev.rule, int(ev.details.get("count", "1"))))
        return out
    finally:
        await nc.close()


async def test_flood_of_garbage_from_one_agency_does_not_block_another(
    small_stack: DevStack,
) -> None:
    conn = small_stack.connection
    assert conn is not None
    pw = small_stack.passphrase()
    vn = await AgencyClient.connect(conn, "VN-MPS", passphrase=pw)
    th = await AgencyClient.connect(conn, "TH-AHTD", passphrase=pw)
    kh = await AgencyClient.connect(conn, "KH-AHTJP", passphrase=pw)
    try:
        flood = 400

        async def garbage() -> None:
            acks = [vn.js.publish(s.submit("VN-MPS"), os.urandom(64 + i % 200),
                                  headers={"Nats-Msg-Id": f"junk-{i}"})
                    for i in range(flood)]
            await asyncio.gather(*acks)

        flooding = asyncio.create_task(garbage())
        t0 = time.monotonic()
        body = schemas.IntelReport(title="t", narrative=schemas.Narrative(text="y", lang="en"))
        sent = []
        for _ in range(5):
            m = await th.send(body, category=Category.ROUTES, level=Level.RESTRICTED,
                              to=["KH-AHTJP"])
            sent.append(m.header.id)
        got: list[str] = []
        # A bound on the loop, not a timing target: the property is that TH's messages
        # arrive while VN's junk is still being rejected.
        while set(got) < set(sent) and time.monotonic() - t0 < 30:
            got += [m.header.id for m in (await kh.inbox(timeout=1)).messages]
        assert sorted(got) == sorted(sent)
        await flooding
        # Every piece of junk is rejected, counted and audited with its rule.
        deadline = time.monotonic() + 20
        def rejected_total() -> float:
            # Random junk may also look like a forward submission ("forward.schema").
            return float(sum(small_stack.metrics.rejected.labels(rule=r)._value.get()
                             for r in ("schema", "forward.schema")))

        while rejected_total() < flood and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert rejected_total() == flood
        audited = 0
        while time.monotonic() < deadline:
            events = await _audit_events(small_stack)
            audited = sum(e[3] for e in events if e[:2] == ("rejected", "VN-MPS")
                          and e[2] in ("schema", "forward.schema"))
            if audited >= flood:
                break
            await asyncio.sleep(0.2)
        assert audited == flood
        # The flooder is told why, once per piece of junk: id-less outcomes are keyed by
        # a hash of the submission, so none is de-duplicated away.
        outcomes: list[schemas.Outcome] = []
        while len(outcomes) < flood and time.monotonic() < deadline + 10:
            outcomes += await vn.outcomes(limit=200, timeout=1)
        assert len(outcomes) == flood
        assert {o.status for o in outcomes} == {"rejected"}
        assert all("schema:" in (o.error or "") for o in outcomes)
    finally:
        for c in (vn, th, kh):
            await c.close()


async def test_oversize_and_wrong_subject_end_to_end_with_audit(
    small_stack: DevStack,
) -> None:
    conn = small_stack.connection
    assert conn is not None
    pw = small_stack.passphrase()
    th = await AgencyClient.connect(conn, "TH-AHTD", passphrase=pw)
    kh = await AgencyClient.connect(conn, "KH-AHTJP", passphrase=pw)
    try:
        body = schemas.IntelReport(title="t",
                                   narrative=schemas.Narrative(text="A" * (LIMIT + 10),
                                                               lang="en"))
        big = await th.send(body, category=Category.ROUTES, level=Level.RESTRICTED,
                            to=["KH-AHTJP"])
        out = await th.wait_outcome(big.header.id)
        assert out.status == "rejected" and (out.error or "").startswith("envelope.size:")

        # KH's validly signed message, published by TH on TH's own subject.
        small = schemas.IntelReport(title="t", narrative=schemas.Narrative(text="z", lang="en"))
        header = kh.draft(small, category=Category.ROUTES, level=Level.RESTRICTED,
                          to=["TH-AHTD"])
        env = seal(schemas.encode(header), schemas.encode(small),
                   kh.directory.recipients_for("TH-AHTD", kh.clock()), kh.identity)
        await th.js.publish(s.submit("TH-AHTD"), schemas.encode_envelope(env),
                            headers={"Nats-Msg-Id": header.id})
        out = await th.wait_outcome(header.id)
        assert out.status == "rejected" and (out.error or "").startswith("sender.subject:")
        assert (await kh.inbox(timeout=0.5)).messages == []

        want = {("rejected", "TH-AHTD", "envelope.size"),
                ("rejected", "TH-AHTD", "sender.subject")}
        events: list[tuple[str, str | None, str | None]] = []
        for _ in range(50):  # the audit sequencer appends asynchronously
            events = [e[:3] for e in await _audit_events(small_stack)]
            if want <= set(events):
                break
            await asyncio.sleep(0.1)
        assert want <= set(events), events
    finally:
        await th.close()
        await kh.close()

