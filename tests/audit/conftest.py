"""Shared builders for the audit tests: a signed log of sample events and its bundle."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.audit_sample import sample_events
from broker.audit.events import AuditEvent
from broker.audit.heads import SignedTreeHead
from broker.audit.log import AuditLog
from broker.audit.store import write_bundle

# Deterministic keys keep failures reproducible.
LOG_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def build_log(
    events: Sequence[AuditEvent], head_every: int = 25, key: Ed25519PrivateKey = LOG_KEY
) -> tuple[AuditLog, list[SignedTreeHead]]:
    """A log with a signed head every `head_every` entries and one at the end."""
    log = AuditLog(key)
    heads = []
    for i, e in enumerate(events):
        log.add(e)
        if (i + 1) % head_every == 0:
            heads.append(log.head(e.at))
    if not heads or heads[-1].size != log.size:
        heads.append(log.head(events[-1].at + timedelta(seconds=1)))
    return log, heads


@pytest.fixture(scope="session")
def events() -> list[AuditEvent]:
    return sample_events(30)


BundleMaker = Callable[..., Path]


@pytest.fixture
def make_bundle(tmp_path: Path) -> BundleMaker:
    counter = iter(range(1000))

    def make(
        entries: Sequence[bytes],
        heads: Sequence[SignedTreeHead],
        public_key: bytes | None = None,
    ) -> Path:
        d = tmp_path / f"bundle{next(counter)}"
        write_bundle(d, entries, list(heads), public_key or build_pub())
        return d

    return make


def build_pub() -> bytes:
    return AuditLog(LOG_KEY).public_key


# Test modules are imported with --import-mode=importlib, so they cannot import this
# conftest; the builders reach them as fixtures.
Builder = Callable[..., tuple[AuditLog, list[SignedTreeHead]]]


@pytest.fixture
def build() -> Builder:
    return build_log


@pytest.fixture
def log_key() -> Ed25519PrivateKey:
    return LOG_KEY


@pytest.fixture
def other_key() -> Ed25519PrivateKey:
    return OTHER_KEY
