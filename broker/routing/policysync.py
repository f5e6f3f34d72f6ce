"""Live federation registry: agreements and agencies change without restarting brokers.

The registry (the federation TOML) lives in a JetStream key-value bucket, signed by the
federation root like the key directory (keys.records.RegistryRecord): the bucket is
writable by service credentials, so the signature, not the bucket, is what brokers
trust. Each broker refuses a version that the root did not sign, one whose serial is not
above the version it runs (a genuinely signed old registry written back), and one that
does not validate (registry and Cedar policies); it keeps the registry it has and logs
the refusal. An accepted version is swapped in and logged as a `policy_changed` audit
event with the old and new policy versions and serials, so an auditor can tell which
rules governed each decision (decisions record the version too).
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog
from nats.aio.client import Client as NATS
from nats.js.errors import KeyNotFoundError, NoKeysError

from broker.audit.events import AuditEvent
from broker.routing.kvwatch import KeyWatcher, bucket
from keys.directory import FederationRoot, next_serial, verify_registry
from keys.errors import CryptoError, KeysError, RollbackError
from keys.records import RegistryRecord, encoder
from policies.engine import PolicyEngine
from policies.federation import Federation, FederationError, federation_from_dict
from schemas.clock import Clock, utcnow
from schemas.events import EventType

log = structlog.get_logger("orcon.policysync")

REGISTRY_BUCKET = "orcon-registry"
REGISTRY_KEY = "federation"


def parse_registry(data: bytes, source: str) -> Federation:
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise FederationError(source, "file", "toml", f"not valid TOML ({exc})") from None
    return federation_from_dict(raw, source=source)


def sign_registry(root: FederationRoot, toml: bytes, *, serial: int, now: datetime) -> bytes:
    """The signed registry (bucket value) for `toml`, validated first (registry and
    policies): the root never signs a version brokers would refuse."""
    PolicyEngine(parse_registry(toml, "registry"))
    record = RegistryRecord(serial=serial, issued_at=now, federation=toml)
    return encoder.encode(root.sign_registry(record))


async def current_registry(nc: NATS, root_public: bytes) -> RegistryRecord | None:
    """The verified registry in the bucket; None when there is none or it does not
    verify (whatever is there, brokers refuse it too)."""
    kv = await bucket(nc, REGISTRY_BUCKET)
    try:
        entry = await kv.get(REGISTRY_KEY)
    except KeyNotFoundError:
        return None
    if entry.value is None:
        return None
    try:
        return verify_registry(entry.value, root_public)
    except (CryptoError, KeysError):
        return None


async def publish_registry(nc: NATS, signed: bytes, root_public: bytes) -> int:
    """Store a signed registry, after the checks brokers make (signature, policies,
    serial above the bucket's): never hand brokers a version they would refuse.
    Returns the bucket revision."""
    record = verify_registry(signed, root_public)
    PolicyEngine(parse_registry(record.federation, "registry"))
    current = await current_registry(nc, root_public)
    if current is not None and current.serial >= record.serial and current != record:
        raise RollbackError(f"registry serial {record.serial} is not newer than "
                            f"{current.serial} in the bucket")
    kv = await bucket(nc, REGISTRY_BUCKET)
    return int(await kv.put(REGISTRY_KEY, signed))


async def sign_and_publish_registry(
    nc: NATS, root: FederationRoot, toml: bytes, *, now: datetime
) -> tuple[int, RegistryRecord]:
    """One operator step: validate `toml`, sign it with the next serial after the
    bucket's, publish. Returns the bucket revision and the signed record."""
    current = await current_registry(nc, root.public_bytes)
    serial = next_serial(current.serial if current is not None else 0, now)
    signed = sign_registry(root, toml, serial=serial, now=now)
    revision = await publish_registry(nc, signed, root.public_bytes)
    return revision, verify_registry(signed, root.public_bytes)


class RegistryWatcher(KeyWatcher):
    """Reloads every engine that `engines()` returns with each signed, newer, valid
    registry; audits every version it accepts or refuses."""

    bucket_name, key = REGISTRY_BUCKET, REGISTRY_KEY

    def __init__(
        self,
        nc: NATS,
        engines: Callable[[], list[PolicyEngine]],
        root_public: bytes,
        *,
        actor: str = "operator",
        broker_id: str = "policysync",
        clock: Clock = utcnow,
        before_reload: Callable[[Federation], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(nc, broker_id=broker_id, clock=clock)
        self.engines = engines
        # Runs for each valid version before the engines take it (the delivery
        # consumers of a joining agency); if it fails, the version is not applied.
        self.before_reload = before_reload
        self.root_public = root_public
        self.actor = actor
        # The registry a broker starts with comes from its configuration file, which is
        # trusted as deployed; the first signed version in the bucket replaces it.
        self.record: RegistryRecord | None = None
        # The highest serial in the bucket's history when the watch starts: a broker
        # that starts after an older version was written back does not take it.
        self.floor = 0
        self.refusals = 0

    @property
    def serial(self) -> int:
        return self.record.serial if self.record is not None else self.floor

    async def start(self) -> None:
        kv = await bucket(self.nc, self.bucket_name)
        try:
            history = await kv.history(self.key)
        except NoKeysError:
            history = []
        for entry in history:
            with contextlib.suppress(CryptoError, KeysError):
                if entry.value is not None:
                    self.floor = max(self.floor,
                                     verify_registry(entry.value, self.root_public).serial)
        await super().start()

    async def apply(self, value: bytes, revision: int) -> bool:
        try:
            record = verify_registry(value, self.root_public)
        except (CryptoError, KeysError):
            # Opaque on purpose: unsigned, altered and signed-by-another-key look alike.
            return await self._refused(revision, "registry.signature",
                                       "not a registry signed by the federation root")
        if record == self.record:
            return True
        if record.serial < self.serial or (record.serial == self.serial
                                           and self.record is not None):
            return await self._refused(
                revision, "registry.rollback",
                f"registry serial {record.serial} is not newer than {self.serial}")
        try:
            fed = parse_registry(record.federation, f"registry serial {record.serial}")
            PolicyEngine(fed)  # policies must load against it, or nothing changes
        except Exception as exc:
            return await self._refused(revision, "registry.invalid", str(exc))
        if self.before_reload is not None:
            await self.before_reload(fed)
        initial, previous_serial = self.record is None, self.serial
        changed = {(e.version, e.reload(fed)) for e in self.engines()}
        self.record = record
        # Switching from the configured registry to an identical signed copy at start
        # is not a change; any later signed version is, even with the same rules.
        for old, new in sorted(changed):
            if initial and old == new:
                continue
            event = AuditEvent(
                type=EventType.POLICY_CHANGED, at=self.clock(), broker=self.broker_id,
                actor=self.actor, policy_version=new,
                details={"action": "registry", "previous_version": old,
                         "serial": str(record.serial),
                         "previous_serial": str(previous_serial),
                         "revision": str(revision)},
            )
            await self.audit(event, f"registry:{revision}:{new}")
        log.info("registry_updated", revision=revision, serial=record.serial,
                 versions=len(changed))
        return True

    async def _refused(self, revision: int, rule: str, reason: str) -> bool:
        self.refusals += 1
        event = AuditEvent(
            type=EventType.POLICY_CHANGED, at=self.clock(), broker=self.broker_id,
            actor="unverified", rule=rule, reason=reason[:500],
            details={"action": "refused", "revision": str(revision),
                     "serial_in_force": str(self.serial)},
        )
        await self.audit(event, f"registry:{revision}:refused")
        log.error("registry_refused", revision=revision, rule=rule, reason=reason[:200])
        return False
