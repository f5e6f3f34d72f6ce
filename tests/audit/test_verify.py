"""verify_bundle: a valid log passes; each kind of tampering is detected and the first bad
entry is named."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.audit import verify as v
from broker.audit.events import AuditEvent, LogRecord, decode_record, encode_record
from broker.audit.heads import SignedTreeHead, sign_head
from broker.audit.log import AuditLog
from broker.audit.merkle import leaf_hash

Builder = Callable[..., tuple[AuditLog, list[SignedTreeHead]]]
Maker = Callable[..., Path]
Events = list[AuditEvent]

POS = 40  # where the tampering happens; heads are signed every 25 entries


def _forged(entries: list[bytes], index: int, prev: bytes) -> bytes:
    e = decode_record(entries[POS]).event
    fake = msgspec.structs.replace(e, actor="XX-FAKE", reason="forged")
    return encode_record(LogRecord(index, prev, fake))


def _check(report: v.VerifyReport, kind: str, first_bad: int) -> None:
    assert not report.ok
    assert report.first_bad == first_bad, report.problems
    first = report.first_problem
    assert first is not None and first.kind == kind, report.problems
    assert f"{first_bad}" in report.summary()


def test_valid_log(events: Events, build: Builder, make_bundle: Maker) -> None:
    log, heads = build(events)
    calls: list[tuple[int, int]] = []
    report = v.verify_bundle(make_bundle(log.entries(), heads), lambda d, t: calls.append((d, t)))
    assert report.ok, report.problems
    assert report.entries == log.size and report.root == log.root()
    assert report.verified_size == log.size and report.first_bad is None
    assert report.summary().startswith("valid:")
    assert calls and calls[-1][0] == calls[-1][1]


def test_modified_entry(events: Events, build: Builder, make_bundle: Maker) -> None:
    log, heads = build(events)
    entries = log.entries()
    rec = decode_record(entries[POS])
    entries[POS] = encode_record(LogRecord(rec.index, rec.prev, msgspec.structs.replace(
        rec.event, counterpart="XX-OTHER")))
    report = v.verify_bundle(make_bundle(entries, heads))
    _check(report, v.MODIFIED, POS)
    assert f"entry {POS} was modified" in report.summary()


def test_modified_bytes_not_a_record(events: Events, build: Builder, make_bundle: Maker) -> None:
    log, heads = build(events)
    entries = log.entries()
    entries[POS] = b"\xc1" + entries[POS][1:]
    _check(v.verify_bundle(make_bundle(entries, heads)), v.MODIFIED, POS)


def test_deleted_entry(events: Events, build: Builder, make_bundle: Maker) -> None:
    log, heads = build(events)
    entries = log.entries()
    del entries[POS]
    report = v.verify_bundle(make_bundle(entries, heads))
    _check(report, v.DELETED, POS)
    assert f"entry {POS} is missing" in report.summary()


def test_inserted_entry_with_a_valid_looking_chain(
    events: Events, build: Builder, make_bundle: Maker
) -> None:
    log, heads = build(events)
    entries = log.entries()
    entries.insert(POS, _forged(entries, POS, leaf_hash(entries[POS - 1])))
    report = v.verify_bundle(make_bundle(entries, heads))
    _check(report, v.INSERTED, POS)
    assert f"position {POS} was inserted" in report.summary()


def test_inserted_entry_with_a_wrong_index(
    events: Events, build: Builder, make_bundle: Maker
) -> None:
    log, heads = build(events)
    entries = log.entries()
    entries.insert(POS, _forged(entries, 9_999, bytes(32)))
    _check(v.verify_bundle(make_bundle(entries, heads)), v.INSERTED, POS)


def test_reordered_entries(events: Events, build: Builder, make_bundle: Maker) -> None:
    log, heads = build(events)
    entries = log.entries()
    entries[POS], entries[POS + 1] = entries[POS + 1], entries[POS]
    report = v.verify_bundle(make_bundle(entries, heads))
    _check(report, v.REORDERED, POS)
    assert f"entry {POS} is at position {POS + 1}" in report.summary()


def test_replayed_entry(events: Events, build: Builder, make_bundle: Maker) -> None:
    log, heads = build(events)
    entries = log.entries()
    entries.insert(POS + 1, entries[POS])
    _check(v.verify_bundle(make_bundle(entries, heads)), v.DUPLICATED, POS + 1)


def test_truncated_log(events: Events, build: Builder, make_bundle: Maker) -> None:
    log, heads = build(events)
    entries = log.entries()[:-3]
    _check(v.verify_bundle(make_bundle(entries, heads)), v.DELETED, log.size - 3)


def test_consistently_rewritten_chain_is_bounded_by_heads(
    events: Events, build: Builder, make_bundle: Maker
) -> None:
    # An insider with the tooling rebuilds the whole chain after changing one event:
    # the chain is intact, only the signed heads expose it, to a 25-entry range.
    _, heads = build(events)
    altered = list(events)
    altered[POS] = msgspec.structs.replace(altered[POS], actor="XX-FAKE")
    rewritten = AuditLog(Ed25519PrivateKey.generate())
    for e in altered:
        rewritten.add(e)
    report = v.verify_bundle(make_bundle(rewritten.entries(), heads))
    _check(report, v.MODIFIED, 25)
    assert "entries 25..49" in report.summary()


def test_fork_two_heads_same_size(
    events: Events, build: Builder, make_bundle: Maker, log_key: Ed25519PrivateKey
) -> None:
    log, heads = build(events)
    other = AuditLog(log_key)
    for e in events[:50]:
        other.add(msgspec.structs.replace(e, broker="rogue"))
    forked = other.head(heads[1].timestamp + timedelta(seconds=1))
    assert forked.size == heads[1].size == 50
    report = v.verify_bundle(make_bundle(log.entries(), [*heads, forked]))
    assert not report.ok and report.first_bad is None
    kinds = {p.kind for p in report.problems}
    assert v.FORK in kinds
    assert any("both sign size 50" in p.message for p in report.problems)


def test_fork_inconsistent_heads(
    events: Events, build: Builder, make_bundle: Maker, log_key: Ed25519PrivateKey
) -> None:
    log, heads = build(events)
    other = AuditLog(log_key)
    for e in events[:60]:
        other.add(msgspec.structs.replace(e, broker="rogue"))
    forked = other.head(heads[1].timestamp + timedelta(seconds=1))  # size 60, no twin
    report = v.verify_bundle(make_bundle(log.entries(), [*heads, forked]))
    assert [p.kind for p in report.problems] == [v.FORK], report.problems
    assert "inconsistent" in report.problems[0].message and report.first_bad is None


def test_bad_signature_and_pinned_key(
    events: Events, build: Builder, make_bundle: Maker, other_key: Ed25519PrivateKey
) -> None:
    log, heads = build(events)
    h = heads[0]
    heads[0] = SignedTreeHead(h.size, h.root, h.timestamp, h.key_id,
                              bytes([h.signature[0] ^ 1]) + h.signature[1:])
    d = make_bundle(log.entries(), heads)
    assert [p.kind for p in v.verify_bundle(d).problems] == [v.BAD_SIGNATURE]
    pinned = AuditLog(other_key).public_key
    kinds = {p.kind for p in v.verify_bundle(d, log_public_key=pinned).problems}
    assert kinds == {v.KEY_MISMATCH, v.BAD_SIGNATURE, v.UNSIGNED}


def test_rollback(
    events: Events, build: Builder, make_bundle: Maker, log_key: Ed25519PrivateKey
) -> None:
    log, heads = build(events)
    late = sign_head(25, log.root(25), heads[-1].timestamp + timedelta(days=1), log_key,
                     log.key_id)
    report = v.verify_bundle(make_bundle(log.entries(), [*heads, late]))
    assert [p.kind for p in report.problems] == [v.ROLLBACK]
