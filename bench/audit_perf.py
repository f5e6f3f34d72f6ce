"""Figures for `orcon bench`: audit log throughput, proof latency, verification time."""

from __future__ import annotations

import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.audit_sample import iter_sample_events
from broker.audit.heads import SignedTreeHead
from broker.audit.log import AuditLog
from broker.audit.merkle import MerkleTree, verify_inclusion
from broker.audit.store import write_bundle
from broker.audit.verify import verify_bundle

TARGETS = {
    "tree_appends_per_s": 20_000.0,  # at least
    "inclusion_proof_ms": 1.0,  # at most
    "verify_s": 60.0,  # at most, for `entries` entries
}


def measure(entries: int = 1_000_000, *, proofs: int = 2_000, seed: int = 1) -> dict[str, float]:
    """Builds a real log of `entries` sample events, then times:

    - tree_appends_per_s: MerkleTree.append of the encoded records alone;
    - log_appends_per_s: AuditLog.seal + append (encode, chain check, hash, tree);
    - inclusion_proof_ms / inclusion_verify_ms: mean over `proofs` random leaves at the
      full size;
    - consistency_proof_ms: mean over random old sizes;
    - verify_s: `verify_bundle` on the bundle written to a temporary directory.
    """
    rng = random.Random(seed)
    events = list(iter_sample_events(entries, seed=seed))
    log = AuditLog(Ed25519PrivateKey.generate(), keep_entries=True)

    half = entries // 2
    heads: list[SignedTreeHead] = []
    t = time.perf_counter()
    for i, e in enumerate(events):
        if i == half:
            heads.append(log.head(e.at))
        log.append(log.seal(e))
    log_s = time.perf_counter() - t
    heads.append(log.head(events[-1].at + timedelta(seconds=1)))
    records = log.entries()
    del events

    tree = MerkleTree()
    t = time.perf_counter()
    for r in records:
        tree.append(r)
    tree_s = time.perf_counter() - t

    n = tree.size
    root = tree.root()
    idx = [rng.randrange(n) for _ in range(proofs)]
    t = time.perf_counter()
    made = [tree.inclusion_proof(i, n) for i in idx]
    proof_s = time.perf_counter() - t
    t = time.perf_counter()
    ok = all(verify_inclusion(tree.leaf_hash(i), i, n, p, root) for i, p in zip(idx, made,
                                                                               strict=True))
    check_s = time.perf_counter() - t
    if not ok:
        raise AssertionError("an inclusion proof failed to verify")
    olds = [rng.randrange(1, n) for _ in range(proofs)]
    t = time.perf_counter()
    for o in olds:
        tree.consistency_proof(o, n)
    cons_s = time.perf_counter() - t

    del records
    with tempfile.TemporaryDirectory() as d:
        write_bundle(Path(d), log.entries(), heads, log.public_key)
        t = time.perf_counter()
        report = verify_bundle(Path(d))
        verify_s = time.perf_counter() - t
        if not report.ok:
            raise AssertionError(report.summary())
    return {
        "entries": float(n),
        "tree_appends_per_s": n / tree_s,
        "log_appends_per_s": n / log_s,
        "inclusion_proof_ms": proof_s / proofs * 1000,
        "inclusion_verify_ms": check_s / proofs * 1000,
        "consistency_proof_ms": cons_s / proofs * 1000,
        "verify_s": verify_s,
    }


if __name__ == "__main__":  # python -m bench.audit_perf [entries]
    import sys

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    for key, value in measure(size).items():
        print(f"{key:24} {value:14.4f}")
