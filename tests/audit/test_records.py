"""Events, signed tree heads, the log maintainer and the bundle format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.audit.events import (
    GENESIS_PREV,
    AuditEvent,
    LogRecord,
    decode_event,
    decode_record,
    encode_event,
    encode_record,
)
from broker.audit.heads import (
    HEAD_LABEL,
    SignedTreeHead,
    head_signing_bytes,
    key_id_for,
    sign_head,
    verify_head,
)
from broker.audit.log import AuditLog, AuditLogError
from broker.audit.merkle import (
    leaf_hash,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from broker.audit.store import BundleError, read_bundle, write_bundle
from schemas.events import EventType

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _event(**kw: object) -> AuditEvent:
    base: dict[str, object] = {"type": EventType.DELIVERED, "at": T0, "broker": "b1",
                               "actor": "IT-NCB", "message_id": "m1", "counterpart": "LY-BLO",
                               "details": {"level": "RESTRICTED"}}
    base.update(kw)
    return AuditEvent(**base)  # type: ignore[arg-type]


def test_event_round_trip_and_validation() -> None:
    e = _event(rule="agreement", header_hash="ab" * 32, policy_version="p1")
    assert decode_event(encode_event(e)) == e
    with pytest.raises(msgspec.ValidationError):
        decode_event(encode_event(_event(at=datetime(2025, 3, 1))))  # naive time
    bad = msgspec.msgpack.encode({"type": "exfiltrated", "at": T0, "broker": "b", "actor": "a"})
    with pytest.raises(msgspec.ValidationError):
        decode_event(bad)
    bad = msgspec.msgpack.encode({"type": "purged", "at": T0, "broker": "b", "actor": "a",
                                  "details": {"n": 1}})
    with pytest.raises(msgspec.ValidationError):
        decode_event(bad)  # details are strings only


def test_event_carries_metadata_only() -> None:
    # A guard against someone adding a content or key field: the log is permanent.
    assert set(AuditEvent.__struct_fields__) == {
        "type", "at", "broker", "actor", "message_id", "counterpart", "rule", "reason",
        "header_hash", "policy_version", "details",
    }
    assert {t.value for t in EventType} >= {
        "submitted", "rejected", "delivered", "refused", "acknowledged", "consent_requested",
        "consent_granted", "consent_refused", "forwarded", "forward_refused",
        "use_declared", "use_refused", "purged", "key_changed", "policy_changed",
    }


def test_record_round_trip_and_rejects() -> None:
    rec = LogRecord(3, b"\x07" * 32, _event())
    assert decode_record(encode_record(rec)) == rec
    with pytest.raises(msgspec.ValidationError):
        decode_record(encode_record(LogRecord(3, b"short", _event())))
    with pytest.raises(msgspec.ValidationError):
        decode_record(encode_record(LogRecord(-1, GENESIS_PREV, _event())))
    with pytest.raises(msgspec.DecodeError):
        decode_record(b"\xc1garbage")


def test_head_sign_verify_and_tamper(log_key: Ed25519PrivateKey,
                                     other_key: Ed25519PrivateKey) -> None:
    root = leaf_hash(b"x")
    kid = key_id_for(log_key.public_key())
    head = sign_head(7, root, T0, log_key, kid)
    assert verify_head(head, log_key.public_key())
    assert SignedTreeHead.from_json(head.to_json()) == head
    pub = log_key.public_key()
    for bad in (
        SignedTreeHead(8, head.root, head.timestamp, kid, head.signature),
        SignedTreeHead(7, leaf_hash(b"y"), head.timestamp, kid, head.signature),
        SignedTreeHead(7, head.root, T0 + timedelta(microseconds=1), kid, head.signature),
        SignedTreeHead(7, head.root, head.timestamp, "other", head.signature),
        SignedTreeHead(7, head.root, head.timestamp, kid, bytes(64)),
        SignedTreeHead(7, b"short", head.timestamp, kid, head.signature),
    ):
        assert not verify_head(bad, pub)
    assert not verify_head(head, other_key.public_key())
    # Fixed encoding with a domain label: the key never signs bare (size, root).
    msg = head_signing_bytes(7, root, T0, kid)
    assert msg.startswith(HEAD_LABEL) and msg[len(HEAD_LABEL):len(HEAD_LABEL) + 8] == (
        (7).to_bytes(8, "big"))
    unlabelled = log_key.sign(msg[len(HEAD_LABEL):])
    assert not verify_head(SignedTreeHead(7, root, T0, kid, unlabelled), pub)
    with pytest.raises(ValueError):
        sign_head(1, root, datetime(2025, 1, 1), log_key, kid)  # naive timestamp


def test_log_appends_chains_and_proves(log_key: Ed25519PrivateKey) -> None:
    log = AuditLog(log_key)
    for i in range(10):
        assert log.add(_event(message_id=f"m{i}")) == i
    first = decode_record(log.entry(0))
    assert first.index == 0 and first.prev == GENESIS_PREV
    assert decode_record(log.entry(5)).prev == leaf_hash(log.entry(4))
    head = log.head(T0)
    assert verify_head(head, log.public_key) and head.size == 10
    proof = log.inclusion_proof(4)
    assert verify_inclusion(leaf_hash(log.entry(4)), 4, 10, proof, head.root)
    assert verify_consistency(6, 10, log.root(6), head.root, log.consistency_proof(6))
    # A restarted maintainer rebuilt from the stream reaches the same root.
    again = AuditLog.replay(log.entries(), log_key, keep_entries=False)
    assert again.root() == head.root
    with pytest.raises(AuditLogError):
        again.entry(0)


def test_log_refuses_records_that_do_not_continue_it(log_key: Ed25519PrivateKey) -> None:
    log = AuditLog(log_key)
    log.add(_event())
    stale = log.seal(_event(message_id="m2"))
    log.add(_event(message_id="m3"))
    with pytest.raises(AuditLogError, match="index 1"):
        log.append(stale)  # a second writer's record for an index already taken
    with pytest.raises(AuditLogError, match="link"):
        log.append(encode_record(LogRecord(2, GENESIS_PREV, _event())))
    with pytest.raises(AuditLogError, match="not a log record"):
        log.append(b"garbage")
    assert log.size == 2


def test_bundle_round_trip_and_format_errors(tmp_path: Path,
                                            log_key: Ed25519PrivateKey) -> None:
    log = AuditLog(log_key)
    for i in range(5):
        log.add(_event(message_id=f"m{i}"))
    heads = [log.head(T0)]
    write_bundle(tmp_path / "b", log.entries(), heads, log.public_key)
    b = read_bundle(tmp_path / "b")
    assert b.entries == log.entries() and b.heads == heads and b.log_public_key == log.public_key
    assert (tmp_path / "b" / "log_key.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY")

    entries = tmp_path / "b" / "entries.bin"
    data = entries.read_bytes()
    entries.write_bytes(data[:-3])
    with pytest.raises(BundleError, match="truncated"):
        read_bundle(tmp_path / "b")
    entries.write_bytes(b"NOTALOG!" + data[8:])
    with pytest.raises(BundleError, match="magic"):
        read_bundle(tmp_path / "b")
    entries.write_bytes(data)
    (tmp_path / "b" / "heads.jsonl").write_text('{"size": "x"}\n')
    with pytest.raises(BundleError, match=r"heads\.jsonl:1"):
        read_bundle(tmp_path / "b")
    with pytest.raises(BundleError):
        read_bundle(tmp_path / "missing")


def test_perf_measure_runs_and_reports_every_figure() -> None:
    from bench.audit_perf import TARGETS, measure

    figures = measure(3_000, proofs=50)
    assert figures["entries"] == 3_000
    assert set(TARGETS) <= set(figures)
    assert all(value > 0 for value in figures.values())


def test_sealed_batch_commits_like_appends_each_entry_hashed_once(
    log_key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sequencer's path (seal a batch, store it, commit it) builds the same log as
    appending one by one, and hashes each entry once: `commit` neither decodes nor
    hashes what the log itself encoded."""
    import broker.audit.log as log_module

    events = [_event(message_id=f"m{i}") for i in range(7)]
    one_by_one = AuditLog(log_key)
    for e in events[:3]:
        one_by_one.add(e)
    batched = AuditLog.replay(one_by_one.entries(), log_key)
    for e in events[3:]:
        one_by_one.add(e)

    hashed: list[bytes] = []
    real_leaf_hash = log_module.leaf_hash

    def counting(entry: bytes) -> bytes:
        hashed.append(entry)
        return real_leaf_hash(entry)

    monkeypatch.setattr(log_module, "leaf_hash", counting)
    monkeypatch.setattr(log_module, "decode_record", None)  # commit must not decode
    sealed = batched.seal_batch(events[3:])
    assert batched.size == 3  # sealing does not append
    batched.commit(sealed)
    assert [s.index for s in sealed] == [3, 4, 5, 6]
    assert hashed == [s.entry for s in sealed]
    assert batched.entries() == one_by_one.entries()
    assert batched.root() == one_by_one.root()
    assert sealed[0].prev == leaf_hash(one_by_one.entry(2))
    assert all(s.leaf == leaf_hash(s.entry) for s in sealed)


def test_commit_refuses_a_batch_sealed_against_an_older_log(log_key: Ed25519PrivateKey) -> None:
    log = AuditLog(log_key)
    log.add(_event())
    stale = log.seal_batch([_event(message_id="m2")])
    log.add(_event(message_id="m3"))  # e.g. the log was rebuilt from the stream meanwhile
    with pytest.raises(AuditLogError, match="sealed against an older log"):
        log.commit(stale)
    assert log.size == 2
    log.commit([])  # nothing to append
    assert log.size == 2


def test_adopt_keeps_stored_entries_as_leaves_and_reports_the_chain(
    log_key: Ed25519PrivateKey,
) -> None:
    """Rebuilding from an append-only stream: every entry becomes a leaf (the tree must
    match the stream), and the chain check `append` enforces is reported instead."""
    source = AuditLog(log_key)
    for i in range(3):
        source.add(_event(message_id=f"m{i}"))
    good = source.entries()
    broken_link = encode_record(LogRecord(4, GENESIS_PREV, _event(message_id="m4")))
    stream = [good[0], good[1], b"\xc1 garbage", encode_record(LogRecord(9, GENESIS_PREV,
              _event())), broken_link]

    log = AuditLog(log_key, keep_entries=False)
    found = [log.adopt(e) for e in stream]
    assert [f.index for f in found] == [0, 1, 2, 3, 4]
    assert [f.fault for f in found] == [None, None, "foreign", "foreign", "chain_break"]
    assert found[0].record == decode_record(good[0])
    assert found[2].record is None and found[3].record is None  # not records of this log
    assert found[4].record is not None and found[4].record.event.message_id == "m4"
    assert log.size == 5
    assert log.root() == root_from_leaves(leaf_hash(e) for e in stream)
    # The chain goes on from whatever the last stored entry was.
    nxt = log.seal_batch([_event(message_id="m5")])[0]
    assert nxt.index == 5 and nxt.prev == leaf_hash(broken_link)
    # The strict path refuses what adopt flags.
    strict = AuditLog.replay(good[:2], log_key)
    with pytest.raises(AuditLogError, match="not a log record"):
        strict.append(stream[2])
