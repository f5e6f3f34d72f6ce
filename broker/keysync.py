"""Live key directory: rotations and revocations reach every broker within seconds.

The signed directory lives in a JetStream key-value bucket that only brokers (and the
operator's tools, which use broker credentials) may write. Every broker watches it,
verifies each new version against the pinned federation root before using it (a forged
or rolled-back directory is refused and the old one kept), and logs what changed as
`key_changed` audit events. Agencies fetch the current directory from the brokers
(`orcon.directory.<agency>`), never from the bucket, and verify it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from nats.aio.client import Client as NATS
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from broker import subjects as s
from broker.audit.events import AuditEvent, EventType, encode_event
from broker.audit.stream import event_with_id
from keys.directory import Directory
from keys.errors import CryptoError, KeysError

log = structlog.get_logger("orcon.keysync")

DIRECTORY_BUCKET = "orcon-directory"
DIRECTORY_KEY = "current"


async def bucket(nc: NATS, name: str) -> KeyValue:
    """A file-backed KV bucket, created on first use (brokers' credentials only)."""
    js = nc.jetstream()
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(bucket=name, history=16, storage=StorageType.FILE)
        )


async def publish_directory(nc: NATS, data: bytes, root_public: bytes) -> int:
    """Store a new directory version (verified first: never publish what brokers would
    refuse). Returns the bucket revision."""
    Directory.load(data, root_public)
    kv = await bucket(nc, DIRECTORY_BUCKET)
    return int(await kv.put(DIRECTORY_KEY, data))


def key_changes(old: Directory, new: Directory) -> list[tuple[str, str, str]]:
    """(agency, key id, action) for every key added, retired or revoked."""
    changes: list[tuple[str, str, str]] = []
    for agency in new.agencies():
        after = new.entry(agency)
        before = old.entry(agency) if agency in old.agencies() else None
        old_ids = {k.key_id for k in (before.sign_keys + before.kem_keys)} if before else set()
        new_ids = {k.key_id for k in after.sign_keys + after.kem_keys}
        changes += [(agency, kid, "added") for kid in sorted(new_ids - old_ids)]
        changes += [(agency, kid, "retired") for kid in sorted(old_ids - new_ids)]
    old_revoked = {r.key_id for r in old.revocations.revocations}
    for r in new.revocations.revocations:
        if r.key_id not in old_revoked:
            changes.append((r.agency, r.key_id, "revoked"))
    return changes


class DirectoryWatcher:
    """Keeps `current` up to date and calls `on_change` with each verified version."""

    def __init__(
        self,
        nc: NATS,
        initial: Directory,
        on_change: Callable[[Directory], None],
        *,
        broker_id: str = "keysync",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.nc = nc
        self.current = initial
        self.on_change = on_change
        self.broker_id = broker_id
        self.clock = clock
        self.revision = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        kv = await bucket(self.nc, DIRECTORY_BUCKET)
        watcher = await kv.watch(DIRECTORY_KEY)
        self._task = asyncio.create_task(self._run(watcher), name="directory-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is None or entry.value is None or entry.revision <= self.revision:
                continue  # None marks the end of the initial values
            try:
                new = Directory.load(entry.value, self.current.root_public)
            except (CryptoError, KeysError) as exc:
                log.error("directory_refused", revision=entry.revision, error=type(exc).__name__)
                continue
            changes = key_changes(self.current, new)
            self.current, self.revision = new, entry.revision
            self.on_change(new)
            log.info("directory_updated", revision=entry.revision, changes=len(changes))
            await self._audit(changes, entry.revision)

    async def _audit(self, changes: list[tuple[str, str, str]], revision: int) -> None:
        js = self.nc.jetstream()
        for agency, kid, action in changes:
            event = AuditEvent(
                type=EventType.KEY_CHANGED, at=self.clock(), broker=self.broker_id,
                actor=agency, details={"key_id": kid, "action": action},
            )
            key = f"directory:{revision}:{kid}:{action}"
            await js.publish(s.AUDIT_IN_SUBJECT, encode_event(event_with_id(event, key)),
                             headers={"Nats-Msg-Id": key})
