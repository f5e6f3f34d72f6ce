"""Live federation registry: agreements and agencies change without restarting brokers.

The registry (the federation TOML) lives in a JetStream key-value bucket written only
with operator (broker) credentials. Each broker validates a new version completely
(registry and Cedar policies) before swapping it in, keeps the old one when it is
invalid, and logs a `policy_changed` audit event with the old and new policy versions,
so an auditor can tell which rules governed each decision (decisions record the
version too).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from nats.aio.client import Client as NATS

from broker.audit.events import AuditEvent, EventType
from broker.kvwatch import KeyWatcher, bucket
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


class RegistryWatcher(KeyWatcher):
    """Reloads every engine that `engines()` returns with each validated registry."""

    bucket_name, key = REGISTRY_BUCKET, REGISTRY_KEY

    def __init__(
        self,
        nc: NATS,
        engines: Callable[[], list[PolicyEngine]],
        *,
        actor: str = "operator",
        broker_id: str = "policysync",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(nc, broker_id=broker_id, clock=clock)
        self.engines = engines
        self.actor = actor

    async def apply(self, value: bytes, revision: int) -> bool:
        try:
            fed = parse_registry(value, f"registry bucket revision {revision}")
            PolicyEngine(fed)  # policies must load against it, or nothing changes
        except Exception as exc:
            log.error("registry_refused", revision=revision, error=str(exc)[:200])
            return False
        changed = {(e.version, e.reload(fed)) for e in self.engines()}
        for old, new in sorted((o, n) for o, n in changed if o != n):
            event = AuditEvent(
                type=EventType.POLICY_CHANGED, at=self.clock(), broker=self.broker_id,
                actor=self.actor, policy_version=new,
                details={"action": "registry", "previous_version": old,
                         "revision": str(revision)},
            )
            await self.audit(event, f"registry:{revision}:{new}")
        log.info("registry_updated", revision=revision, versions=len(changed))
        return True
