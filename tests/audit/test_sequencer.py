"""The audit sequencer on a real stack (nats-server, JetStream file storage): whatever
else writes the AUDIT stream, the log the sequencer keeps is the stream, and every head
it signs is a head of the stream."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS

from broker.audit import sequencer
from broker.audit.events import AuditEvent, decode_record
from broker.audit.heads import SignedTreeHead, verify_head
from broker.audit.merkle import leaf_hash, root_from_leaves
from broker.audit.sequencer import EVENT_ID, AuditSequencer, encode_events, event_with_id
from broker.audit.store import read_bundle
from broker.hosting.stack import LOG_KEY_NAME, DevStack
from clients.sdk.auditor import fetch_bundle
from keys.identity import Identity
from keys.keyfile import load_identity
from schemas.events import EventType
from transport import subjects as s

AUDITOR = "XX-AUDIT"  # deploy/federation.toml


def _events(ids: list[str]) -> bytes:
    now = datetime.now(UTC)
    return encode_events([event_with_id(AuditEvent(
        type=EventType.SUBMITTED, at=now, broker="broker-test", actor="TH-AHTD",
        message_id=i), i) for i in ids])


async def _submit(nc: NATS, batches: list[list[str]]) -> None:
    js = nc.jetstream()
    for ids in batches:
        await js.publish(s.AUDIT_IN_SUBJECT, _events(ids))


async def _read(nc: NATS, stream: str, subject: str) -> list[bytes]:
    js = nc.jetstream()
    last = (await js.stream_info(stream)).state.last_seq
    out: list[bytes] = []
    if last:
        sub = await js.subscribe(subject, ordered_consumer=True)
        try:
            while len(out) < last:
                out.append((await sub.next_msg(timeout=5)).data)
        finally:
            await sub.unsubscribe()
    return out


def _event_ids(entries: list[bytes]) -> list[str]:
    ids = []
    for e in entries:
        try:
            ids.append(decode_record(e).event.details.get(EVENT_ID, ""))
        except Exception:  # a foreign entry
            continue
    return ids


async def _until(cond: object, what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if await cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out: {what}")


def _assert_log_is_the_stream(entries: list[bytes], heads: list[SignedTreeHead],
                              sequencers: list[AuditSequencer], public_key: bytes) -> None:
    leaves = [leaf_hash(e) for e in entries]
    assert heads, "no head was signed"
    for h in heads:
        assert verify_head(h, public_key)
        assert h.size <= len(entries)
        assert h.root == root_from_leaves(leaves[:h.size]), f"head of size {h.size}"
    for seq in sequencers:
        assert seq.size <= len(entries)
        assert seq.log.root() == root_from_leaves(leaves[:seq.size])


async def test_a_write_that_takes_the_place_of_a_batched_record_is_noticed(
    stack: DevStack, tmp_path: Path,
) -> None:
    """Another writer's entry lands between two records of one batch: the first record
    is refused, the second is stored behind it (its link names the refused record). The
    sequencer must count its batch as failed (a batch is stored only when every record
    was acknowledged, not its last one), rebuild from the stream and append the refused
    event again: its log, and each head it signs, match the stream."""
    seq = stack.audit
    assert seq is not None
    nc = await stack.broker_connection("test-submit")
    intruder = await stack.sequencer_connection("test-intruder")
    try:
        await _submit(nc, [["e1", "e2"]])
        await _until(lambda: _at(seq.size, 2), "first batch appended")
        await intruder.jetstream().publish(s.AUDIT_SUBJECT, b"\xc1 another writer")
        await _submit(nc, [["e3", "e4"]])  # sealed as entries 2 and 3 of a 2-entry log

        async def settled() -> bool:
            entries = await _read(intruder, s.AUDIT_STREAM, s.AUDIT_SUBJECT)
            return seq.size == len(entries) and {"e3", "e4"} <= set(_event_ids(entries))

        await _until(settled, "the refused event appended again")
        await seq.publish_head()
        entries = await _read(intruder, s.AUDIT_STREAM, s.AUDIT_SUBJECT)
        heads = await _heads(stack, tmp_path / "bundle")
    finally:
        await nc.close()
        await intruder.close()
    assert sorted(_event_ids(entries)) == ["e1", "e2", "e3", "e4"]  # each exactly once
    assert seq.foreign == 1
    # e4 was stored behind the refused e3, which was appended after the rebuild.
    assert _event_ids(entries)[2:] == ["e4", "e3"]
    _assert_log_is_the_stream(entries, heads, [seq], seq.log.public_key)


async def _heads(stack: DevStack, tmp: Path) -> list[SignedTreeHead]:
    """Every head in AUDITHEAD, as an auditor fetches them."""
    assert stack.connection is not None
    await fetch_bundle(stack.connection, AUDITOR, tmp, request_head=False)
    return read_bundle(tmp).heads


async def _at(value: int, want: int) -> bool:
    return value >= want


async def test_two_sequencers_at_once_never_sign_a_head_the_stream_contradicts(
    stack: DevStack, tmp_path: Path,
) -> None:
    """A second sequencer (a failover started while the first still runs) competes for
    the same inputs: appends interleave and fail, both rebuild and retry. Every event
    ends up in the log, and every head either signs is a head of the stream."""
    first = stack.audit
    assert first is not None
    identity = load_identity(stack.data_dir / "keys" / f"{LOG_KEY_NAME}.key",
                             stack.passphrase())
    second_nc = await stack.sequencer_connection("test-second")
    second = AuditSequencer(second_nc, identity, interval=0.1, batch=16)
    await second.start()
    nc = await stack.broker_connection("test-submit")
    reader = await stack.sequencer_connection("test-reader")
    want = {f"m{i}:{j}" for i in range(150) for j in range(2)}
    try:
        await _submit(nc, [[f"m{i}:0", f"m{i}:1"] for i in range(150)])

        async def all_in() -> bool:
            entries = await _read(reader, s.AUDIT_STREAM, s.AUDIT_SUBJECT)
            return want <= set(_event_ids(entries))

        await _until(all_in, "every event appended", timeout=60)
        await second.stop()
        await first.publish_head()
        entries = await _read(reader, s.AUDIT_STREAM, s.AUDIT_SUBJECT)
        heads = await _heads(stack, tmp_path / "bundle")
    finally:
        await second.stop()
        await second_nc.close()
        await nc.close()
        await reader.close()
    assert want <= set(_event_ids(entries))
    _assert_log_is_the_stream(entries, heads, [first, second], first.log.public_key)


def test_event_ids_are_remembered_for_the_redelivery_window(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A redelivered submission's events come back after the submission consumer's ack
    wait, in a combined AUDITIN message without a Nats-Msg-Id: the sequencer must still
    know their ids then. Ids are kept for RECENT_S, never fewer than RECENT_MIN, at most
    RECENT_MAX."""
    clock = [1000.0]
    monkeypatch.setattr(sequencer.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(sequencer, "RECENT_MIN", 2)
    monkeypatch.setattr(sequencer, "RECENT_MAX", 5)
    seq = AuditSequencer(NATS(), Identity.generate("XX-LOG"))
    for i in range(4):  # within the window: all kept, beyond RECENT_MIN
        seq._remember(f"e{i}")
    assert list(seq._recent) == ["e0", "e1", "e2", "e3"]
    clock[0] += sequencer.RECENT_S + 1  # the window passed: down to RECENT_MIN, oldest out
    seq._remember("e4")
    assert list(seq._recent) == ["e3", "e4"]
    for i in range(5, 12):  # a burst within the window: at most RECENT_MAX
        seq._remember(f"e{i}")
    assert list(seq._recent) == [f"e{i}" for i in range(7, 12)]
