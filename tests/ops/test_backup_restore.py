"""docs/operations.md, "Backup and restore": the JetStream store of a stopped server,
archived and unpacked after a loss, brings the federation back; an auditor who kept a
signed head proves, offline, that the restored log extends the log it saw, and a log
restored from a backup older than that head is caught."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import schemas
from broker.audit.heads import SignedTreeHead, verify_head
from broker.audit.merkle import MerkleTree, verify_consistency
from broker.audit.store import iter_entries, read_heads, read_public_key
from broker.audit.verify import verify_bundle
from broker.hosting.stack import DevStack
from clients.sdk.auditor import fetch_bundle
from clients.sdk.client import AgencyClient
from schemas import Category, Level
from tests.support.paths import SAMPLE_FEDERATION as SAMPLE

PASS = "backup test passphrase"


def extends(kept: SignedTreeHead, log_key: bytes, bundle: Path) -> bool:
    """The auditor's check: the kept head is genuine, and the bundle's log, up to the
    kept size, has the kept root and an RFC 9162 consistency proof to its full size."""
    if not verify_head(kept, log_key):
        return False
    tree = MerkleTree.from_entries(iter_entries(bundle))
    if len(tree) < kept.size or tree.root(kept.size) != kept.root:
        return False
    proof = tree.consistency_proof(kept.size, len(tree))
    return verify_consistency(kept.size, len(tree), kept.root, tree.root(), proof)


async def _exchange(stack: DevStack, text: str) -> None:
    assert stack.connection is not None
    th = await AgencyClient.connect(stack.connection, "TH-AHTD", passphrase=PASS)
    try:
        sent = await th.send(schemas.IntelReport(title="t", narrative=schemas.Narrative(
            text=text, lang="en")), category=Category.ROUTES, level=Level.CONFIDENTIAL,
            to=["KH-AHTJP"])
        assert (await th.wait_outcome(sent.header.id)).delivered == ["KH-AHTJP"]
    finally:
        await th.close()


async def _fetch(stack: DevStack, out: Path, at_least: int) -> None:
    assert stack.connection is not None
    for _ in range(50):
        n, _heads = await fetch_bundle(stack.connection, "XX-AUDIT", out)
        if n >= at_least:
            return
        await asyncio.sleep(0.2)  # the sequencer appends asynchronously
    raise AssertionError(f"the log never reached {at_least} entries")


async def test_restored_store_is_the_same_log_and_an_older_one_is_caught(tmp_path: Path) -> None:
    data = tmp_path / "fed"
    store = data / "nats" / "jetstream"

    async def run() -> DevStack:
        return DevStack(data, SAMPLE, fast_kdf=True, head_interval=0.2, passphrase=PASS)

    async with await run() as stack:
        await _exchange(stack, "first")
        await _fetch(stack, tmp_path / "early", 2)
    shutil.copytree(store, tmp_path / "backup-old")  # a backup before the kept head

    async with await run() as stack:
        await _exchange(stack, "second")
        await _fetch(stack, tmp_path / "seen", 4)
    kept = read_heads(tmp_path / "seen")[-1]  # the auditor keeps the latest head
    log_key = read_public_key(tmp_path / "seen")
    shutil.copytree(store, tmp_path / "backup")  # the server is stopped: a clean copy

    # The hub's store is lost and restored from the backup.
    shutil.rmtree(store)
    shutil.copytree(tmp_path / "backup", store)
    async with await run() as stack:
        await _exchange(stack, "after the restore")
        await _fetch(stack, tmp_path / "restored", kept.size + 2)
    assert verify_bundle(tmp_path / "restored").ok
    assert extends(kept, log_key, tmp_path / "restored")

    # Restored from the older backup instead: shorter than the head the auditor kept.
    shutil.rmtree(store)
    shutil.copytree(tmp_path / "backup-old", store)
    async with await run() as stack:
        await _fetch(stack, tmp_path / "rolled-back", 1)
    assert verify_bundle(tmp_path / "rolled-back").ok  # consistent with itself...
    assert not extends(kept, log_key, tmp_path / "rolled-back")  # ...not with the past
