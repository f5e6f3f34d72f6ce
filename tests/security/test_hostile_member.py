"""A hostile member agency (or the read-only auditor) holding its own, genuine NATS
credentials tries to write where only the services may write.

NATS does not check a request's reply subject against the requester's publish
permissions: whoever answers a request publishes to the reply subject with *its own*
rights. A member that names the audit input, the audit log, another agency's delivery
subject or a key-value bucket as the reply of an allowed request (its directory lookup,
a resolve, a JetStream API call, a tree-head request) makes the broker, the sequencer or
the JetStream API write there for it. With one NATS account per principal group, the
reply subject lives in the requester's own account: the answer can only come back to
the requester, whatever subject it names.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from broker.audit.events import GENESIS_PREV, AuditEvent, LogRecord, decode_record, encode_record
from broker.audit.heads import SignedTreeHead
from broker.audit.sequencer import decode_events, encode_events
from broker.audit.verify import VerifyReport, verify_bundle
from broker.hosting.stack import DevStack
from broker.routing.keysync import DIRECTORY_BUCKET, DIRECTORY_KEY
from broker.routing.policysync import REGISTRY_BUCKET, REGISTRY_KEY
from clients.sdk.auditor import fetch_bundle
from schemas import Category, Level, examples
from schemas.events import EventType
from tests.support.raw_nats import connect_as, connect_role
from transport import subjects as s

A, B, AUDITOR = "KH-AHTJP", "VN-MPS", "XX-AUDIT"

# Subjects only the services may write: where a misdirected answer would do harm.
TARGETS = [
    s.AUDIT_SUBJECT,
    s.AUDIT_IN_SUBJECT,
    s.AUDIT_HEAD_SUBJECT,
    s.deliver(B),
    s.report(B),
    s.submit(B),
    f"$KV.{DIRECTORY_BUCKET}.{DIRECTORY_KEY}",
    f"$KV.{REGISTRY_BUCKET}.{REGISTRY_KEY}",
]


def agency_requests(agency: str) -> list[tuple[str, bytes]]:
    """Requests an agency may legitimately make (its own lane)."""
    return [
        (s.directory(agency), b""),
        (s.resolve(agency), b"not a resolve request"),
        (f"$JS.API.CONSUMER.INFO.{s.DELIVER_STREAM}.{s.inbox_consumer(agency)}", b""),
        (f"$JS.API.CONSUMER.MSG.NEXT.{s.DELIVER_STREAM}.{s.report_consumer(agency)}",
         json.dumps({"batch": 1, "no_wait": True}).encode()),
    ]


def auditor_requests() -> list[tuple[str, bytes]]:
    return [
        (s.directory(AUDITOR), b""),
        (s.HEAD_REQUEST_SUBJECT, b""),
        (f"$JS.API.STREAM.INFO.{s.AUDIT_STREAM}", b""),
        (f"$JS.API.STREAM.MSG.GET.{s.AUDIT_STREAM}", json.dumps({"seq": 1}).encode()),
        (f"$JS.API.STREAM.INFO.{s.AUDIT_HEAD_STREAM}", b""),
    ]


class Landed:
    """Everything that reaches the target subjects, seen from the services' side."""

    def __init__(self) -> None:
        self.msgs: list[tuple[str, bytes]] = []

    async def on_msg(self, msg: Msg) -> None:
        if not _legitimate(msg.subject, msg.data):
            self.msgs.append((msg.subject, msg.data))


def _legitimate(subject: str, data: bytes) -> bool:
    """What the services themselves write on the audit subjects while the attack runs
    (heads, the events and records of the attacker's own rejected junk): anything else
    there (a directory, a resolve answer, a JetStream acknowledgement) is injected."""
    try:
        if subject == s.AUDIT_HEAD_SUBJECT:
            SignedTreeHead.from_json(json.loads(data))
        elif subject == s.AUDIT_IN_SUBJECT:
            decode_events(data)
        elif subject == s.AUDIT_SUBJECT:
            decode_record(data)
        else:
            return False
    except Exception:
        return False
    return True


async def stream_sizes(nc: NATS) -> dict[str, int]:
    js = nc.jetstream()
    out = {}
    for name in (s.AUDIT_STREAM, s.AUDIT_HEAD_STREAM, s.DELIVER_STREAM, s.SUBMIT_STREAM):
        out[name] = (await js.stream_info(name)).state.last_seq
    for bucket in (DIRECTORY_BUCKET, REGISTRY_BUCKET):
        out[bucket] = (await js.stream_info(f"KV_{bucket}")).state.last_seq
    return out


async def inject(stack: DevStack, principal: str, requests: list[tuple[str, bytes]],
                 *, compare_streams: bool = True
                 ) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """Send each request once per target reply subject as `principal`. Returns the
    services' subjects an answer landed on, and the streams that grew meanwhile
    (before, after), audit streams excepted (they grow on their own)."""
    services = await stack.broker_connection("watch")
    landed = Landed()
    try:
        for target in TARGETS:
            await services.subscribe(target, cb=landed.on_msg)
        await services.flush()
        # The audit head stream grows on its own (periodic heads): compare the rest.
        before = await stream_sizes(services)
        attacker = await connect_as(stack, principal)
        try:
            for subject, payload in requests:
                for target in TARGETS:
                    await attacker.publish(subject, payload, reply=target)
            await attacker.flush()
        finally:
            await attacker.close()
        await asyncio.sleep(1.0)  # the services answer within milliseconds
        after = await stream_sizes(services)
    finally:
        await services.close()
    if compare_streams:
        before.pop(s.AUDIT_HEAD_STREAM), after.pop(s.AUDIT_HEAD_STREAM)
        before.pop(s.AUDIT_STREAM), after.pop(s.AUDIT_STREAM)
    grown = {name: (before[name], after[name]) for name in before
             if compare_streams and after[name] != before[name]}
    return sorted({subj for subj, _ in landed.msgs}), grown


async def audit_still_works(stack: DevStack, agency, tmp_path: Path) -> VerifyReport:  # type: ignore[no-untyped-def]
    """The sequencer still appends and the auditor's fetch + offline verify succeed."""
    th = await agency("TH-AHTD")
    sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.RESTRICTED, to=["KH-AHTJP"], resolve=False)
    outcome = await th.wait_outcome(sent.header.id)
    assert outcome.delivered == ["KH-AHTJP"]
    assert stack.audit is not None and stack.connection is not None
    for _ in range(100):
        if stack.audit.size >= 2:
            break
        await asyncio.sleep(0.05)
    assert stack.audit.size >= 2, "the sequencer stopped appending"
    n, _ = await fetch_bundle(stack.connection, AUDITOR, tmp_path / "bundle")
    assert n == stack.audit.size
    return verify_bundle(tmp_path / "bundle")


async def test_agency_reply_subject_cannot_reach_services_subjects(
    stack: DevStack, agency, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    landed, grown = await inject(stack, A, agency_requests(A))
    assert landed == [] and grown == {}, (landed, grown)
    report = await audit_still_works(stack, agency, tmp_path)
    assert report.ok, report.summary()


async def test_auditor_reply_subject_cannot_reach_services_subjects(
    stack: DevStack, agency, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    landed, grown = await inject(stack, AUDITOR, auditor_requests())
    assert landed == [] and grown == {}, (landed, grown)
    report = await audit_still_works(stack, agency, tmp_path)
    assert report.ok, report.summary()


async def test_agency_submission_acknowledgement_cannot_be_redirected(
    stack: DevStack, agency, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """A JetStream publish is a request too: the server's acknowledgement goes to the
    reply subject. An agency submitting (junk) on its own subject, and acknowledging on
    its own consumer, with the reply set to a services' subject writes nothing there."""
    landed, _ = await inject(stack, A, [
        (s.submit(A), b"junk submission"),
        (f"$JS.ACK.{s.DELIVER_STREAM}.{s.inbox_consumer(A)}.1.1.1.1.0", b"+ACK"),
    ], compare_streams=False)
    assert landed == [], f"answers landed on services' subjects: {landed}"
    report = await audit_still_works(stack, agency, tmp_path)
    assert report.ok, report.summary()


async def test_agency_answers_still_come_back_to_the_requester(stack: DevStack) -> None:
    """The isolation must not break the lane itself: the same requests with the
    agency's own inbox as reply are answered."""
    nc = await connect_as(stack, A)
    try:
        msg = await nc.request(s.directory(A), b"", timeout=5)
        assert len(msg.data) > 100
        info = await nc.request(
            f"$JS.API.CONSUMER.INFO.{s.DELIVER_STREAM}.{s.inbox_consumer(A)}", b"", timeout=5)
        assert json.loads(info.data)["name"] == s.inbox_consumer(A)
    finally:
        await nc.close()


# ---- the audit log admits only well-formed records from the sequencer ------------------


async def test_sequencer_rejects_counts_and_moves_on_after_bad_input(
    stack: DevStack, agency, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """Undecodable bytes and a forged, pre-chained log record on the audit input are
    rejected and counted; the sequencer keeps appending; the log stays verifiable."""
    assert stack.audit is not None
    nc = await stack.broker_connection("buggy-service")
    try:
        js = nc.jetstream()
        forged = encode_record(LogRecord(index=0, prev=GENESIS_PREV, event=AuditEvent(
            type=EventType.DELIVERED, at=stack.clock(), broker="broker-1", actor=B,
            counterpart=A, message_id="forged")))
        await js.publish(s.AUDIT_IN_SUBJECT, b"\xc1 undecodable")
        await js.publish(s.AUDIT_IN_SUBJECT, forged)
    finally:
        await nc.close()
    for _ in range(100):
        if stack.audit.rejected >= 2:
            break
        await asyncio.sleep(0.05)
    assert stack.audit.rejected == 2
    # Operators see it too: a Prometheus counter in the process's one registry.
    assert stack.metrics.registry.get_sample_value("orcon_audit_rejected_inputs_total") == 2
    assert stack.metrics.registry.get_sample_value("orcon_audit_foreign_entries") == 0
    report = await audit_still_works(stack, agency, tmp_path)
    assert report.ok, report.summary()
    raw = (tmp_path / "bundle" / "entries.bin").read_bytes()
    assert b"forged" not in raw


async def test_an_entry_the_sequencer_did_not_write_is_counted_for_operators(
    stack: DevStack,
) -> None:
    """Someone holding the sequencer's credentials appends to the log directly: the
    entry stays (append-only), the sequencer flags it, carries on, and the gauge
    `orcon_audit_foreign_entries` tells the operators."""
    assert stack.audit is not None
    before = stack.audit.size
    ops = await stack.sequencer_connection("intruder")
    nc = await stack.broker_connection("a-service")
    try:
        await ops.jetstream().publish(s.AUDIT_SUBJECT, b"not a record")
        event = AuditEvent(type=EventType.DELIVERED, at=stack.clock(), broker="broker-1",
                           actor=B, counterpart=A, message_id="after-the-intruder")
        await nc.jetstream().publish(s.AUDIT_IN_SUBJECT, encode_events([event]))
        for _ in range(100):
            if stack.audit.size >= before + 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await ops.close()
        await nc.close()
    assert stack.audit.size == before + 2  # the intruder's entry, then the event
    assert stack.audit.foreign == 1
    assert stack.metrics.registry.get_sample_value("orcon_audit_foreign_entries") == 1


async def test_only_the_sequencer_writes_the_audit_log(stack: DevStack) -> None:
    """A broker's credentials (or a bug in any other service) cannot append to the log
    directly: the server refuses the publish and the log is unchanged."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc).lower())

    nc = await connect_role(stack, "broker", on_error)
    try:
        js = nc.jetstream()
        before = (await js.stream_info(s.AUDIT_STREAM)).state.last_seq
        await nc.publish(s.AUDIT_SUBJECT, b"\xc1 not a record")
        await nc.publish(s.AUDIT_HEAD_SUBJECT, b"{}")
        await nc.flush()
        for _ in range(40):
            if len(errors) >= 2:
                break
            await asyncio.sleep(0.05)
        assert any("permissions violation" in e and s.AUDIT_SUBJECT in e for e in errors)
        # Nor through the sequencer, which may write the log: it answers a head request
        # only on a reply inbox, never on a subject the requester names.
        assert stack.audit is not None
        refused = stack.audit.rejected
        await nc.publish(s.HEAD_REQUEST_SUBJECT, b"", reply=s.AUDIT_SUBJECT)
        await nc.flush()
        for _ in range(40):
            if stack.audit.rejected > refused:
                break
            await asyncio.sleep(0.05)
        assert stack.audit.rejected == refused + 1
        assert (await js.stream_info(s.AUDIT_STREAM)).state.last_seq == before
    finally:
        await nc.close()


@pytest.mark.parametrize("garbage", [b"\xc1 undecodable", b'{"index": 99}'])
async def test_sequencer_survives_a_foreign_entry_already_in_the_log(
    stack: DevStack, agency, tmp_path: Path, garbage: bytes  # type: ignore[no-untyped-def]
) -> None:
    """If a foreign entry is in AUDIT anyway (written with the sequencer's own
    credentials, or by an older version), the sequencer counts it, keeps it as an
    opaque leaf (the log is append-only) and moves on, never retrying forever; the
    auditor's verification names it instead of failing to run."""
    assert stack.audit is not None
    nc = await stack.sequencer_connection("intruder")
    try:
        await nc.jetstream().publish(s.AUDIT_SUBJECT, garbage)
    finally:
        await nc.close()
    th = await agency("TH-AHTD")
    sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.RESTRICTED, to=["KH-AHTJP"], resolve=False)
    await th.wait_outcome(sent.header.id)
    for _ in range(200):
        if stack.audit.size >= 3:
            break
        await asyncio.sleep(0.05)
    assert stack.audit.size >= 3, "the sequencer stopped appending"
    assert stack.audit.foreign == 1
    assert stack.connection is not None
    n, _ = await fetch_bundle(stack.connection, AUDITOR, tmp_path / "bundle")
    assert n == stack.audit.size
    report = verify_bundle(tmp_path / "bundle")
    assert not report.ok
    assert report.first_bad == 0, report.summary()
