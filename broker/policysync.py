"""Live federation registry: agreements and agencies change without restarting brokers.

The registry (the federation TOML) lives in a JetStream key-value bucket written only
with operator (broker) credentials. Each broker validates a new version completely
(registry and Cedar policies) before swapping it in, keeps the old one when it is
invalid, and logs a `policy_changed` audit event with the old and new policy versions,
so an auditor can tell which rules governed each decision (decisions record the
version too).
"""

from __future__ import annotations

import asyncio
import contextlib
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from nats.aio.client import Client as NATS
from nats.js.kv import KeyValue

from broker import subjects as s
from broker.audit.events import AuditEvent, EventType, encode_event
from broker.audit.stream import event_with_id
from broker.keysync import bucket
from policies.engine import PolicyEngine
from policies.federation import Federation, FederationError, federation_from_dict

log = structlog.get_logger("orcon.policysync")

REGISTRY_BUCKET = "orcon-registry"
REGISTRY_KEY = "federation"


def parse_registry(data: bytes, source: str) -> Federation:
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FederationError(source, "file", "toml", f"not valid TOML ({exc})") from None
    return federation_from_dict(raw, source=source)


async def publish_registry(nc: NATS, data: bytes) -> int:
    """Validate (registry and policies) before publishing: never hand brokers a version
    they would refuse."""
    PolicyEngine(parse_registry(data, "registry"))
    kv = await bucket(nc, REGISTRY_BUCKET)
    return int(await kv.put(REGISTRY_KEY, data))


class RegistryWatcher:
    def __init__(
        self,
        nc: NATS,
        engines: Callable[[], list[PolicyEngine]],
        *,
        actor: str = "operator",
        broker_id: str = "policysync",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.nc = nc
        self.engines = engines
        self.actor = actor
        self.broker_id = broker_id
        self.clock = clock
        self.revision = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        kv = await bucket(self.nc, REGISTRY_BUCKET)
        watcher = await kv.watch(REGISTRY_KEY)
        self._task = asyncio.create_task(self._run(watcher), name="registry-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is None or entry.value is None or entry.revision <= self.revision:
                continue
            source = f"registry bucket revision {entry.revision}"
            try:
                fed = parse_registry(entry.value, source)
                PolicyEngine(fed)  # policies must load against it, or nothing changes
            except Exception as exc:
                log.error("registry_refused", revision=entry.revision, error=str(exc)[:200])
                continue
            self.revision = entry.revision
            changed: list[tuple[str, str]] = []
            for engine in self.engines():
                old = engine.version
                new = engine.reload(fed)
                if new != old:
                    changed.append((old, new))
            for old, new in sorted(set(changed)):
                await self._audit(old, new, entry.revision)
            log.info("registry_updated", revision=entry.revision, versions=len(changed))

    async def _audit(self, old: str, new: str, revision: int) -> None:
        event = AuditEvent(
            type=EventType.POLICY_CHANGED, at=self.clock(), broker=self.broker_id,
            actor=self.actor, policy_version=new,
            details={"action": "registry", "previous_version": old, "revision": str(revision)},
        )
        key = f"registry:{revision}:{new}"
        await self.nc.jetstream().publish(
            s.AUDIT_IN_SUBJECT, encode_event(event_with_id(event, key)),
            headers={"Nats-Msg-Id": key},
        )
