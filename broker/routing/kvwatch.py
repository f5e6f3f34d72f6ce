"""Watching one key of a JetStream key-value bucket: the shared half of the live key
directory (broker/routing/keysync.py) and the live registry (broker/routing/policysync.py)."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from nats.aio.client import Client as NATS
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError
from nats.js.kv import KeyValue

from broker.audit.events import AuditEvent, encode_event
from broker.audit.sequencer import event_with_id
from schemas.clock import Clock, utcnow
from transport import subjects as s

log = structlog.get_logger("orcon.kvwatch")


async def bucket(nc: NATS, name: str) -> KeyValue:
    """A file-backed bucket, created on first use (brokers' credentials only)."""
    js = nc.jetstream()
    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        return await js.create_key_value(
            KeyValueConfig(bucket=name, history=16, storage=StorageType.FILE)
        )


class KeyWatcher:
    """Calls `apply(value, revision)` for every new revision of `bucket/key`. A subclass
    validates before it applies; whatever it refuses leaves the current state alone."""

    bucket_name: str
    key: str

    def __init__(
        self,
        nc: NATS,
        *,
        broker_id: str,
        clock: Clock = utcnow,
    ) -> None:
        self.nc = nc
        self.broker_id = broker_id
        self.clock = clock
        self.revision = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        kv = await bucket(self.nc, self.bucket_name)
        watcher = await kv.watch(self.key)
        self._task = asyncio.create_task(self._run(watcher), name=f"watch-{self.bucket_name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            # None marks the end of the initial values; older revisions are history.
            if entry is None or entry.value is None or entry.revision <= self.revision:
                continue
            try:
                applied = await self.apply(entry.value, entry.revision)
            except Exception as exc:
                # Whatever failed (a bug, the audit publish, even the log stream), this
                # version is not applied and the watch goes on: a watcher that died
                # would silently freeze the directory or registry for good.
                applied = False
                with contextlib.suppress(Exception):
                    log.error("kv_apply_failed", bucket=self.bucket_name,
                              revision=entry.revision, error=type(exc).__name__)
            if applied:
                self.revision = entry.revision

    async def apply(self, value: bytes, revision: int) -> bool:
        """Validate and apply one version; False when refused."""
        raise NotImplementedError

    async def audit(self, event: AuditEvent, key: str) -> None:
        await self.nc.jetstream().publish(
            s.AUDIT_IN_SUBJECT, encode_event(event_with_id(event, key)),
            headers={"Nats-Msg-Id": key},
        )
