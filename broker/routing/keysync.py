"""Live key directory: rotations and revocations reach every broker within seconds.

The signed directory lives in a JetStream key-value bucket that only services (and the
operator's tools) may write. Every broker watches it, verifies each new version against
the pinned federation root before using it, and refuses a version that takes anything
back (an entry or the revocation list with a serial not above the one held: a
genuinely signed old copy written back would otherwise undo a revocation). Whatever it
accepts is logged as `key_changed` events (keys added, retired, revoked; entries
re-signed), and whatever it refuses as a `key_changed` event with action `refused`,
so a write to the bucket is never silent. Agencies fetch the current directory from
the brokers (`orcon.directory.<agency>`), never from the bucket, and check it the same
way (clients/sdk/client.py).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from nats.aio.client import Client as NATS
from nats.js.errors import KeyNotFoundError

from broker.audit.events import AuditEvent
from broker.routing.kvwatch import KeyWatcher, bucket
from keys.directory import Directory
from keys.errors import CryptoError, KeysError, RollbackError
from schemas.clock import Clock, utcnow
from schemas.events import EventType

log = structlog.get_logger("orcon.keysync")

DIRECTORY_BUCKET = "orcon-directory"
DIRECTORY_KEY = "current"


async def publish_directory(nc: NATS, data: bytes, root_public: bytes) -> int:
    """Store a new directory version (verified first, and against the version in the
    bucket: never publish what brokers would refuse). Returns the bucket revision."""
    new = Directory.load(data, root_public)
    kv = await bucket(nc, DIRECTORY_BUCKET)
    current = await current_directory(nc, root_public)
    if current is not None:
        current.successor(new)
    return int(await kv.put(DIRECTORY_KEY, data))


async def current_directory(nc: NATS, root_public: bytes) -> Directory | None:
    """The verified directory in the bucket; None when there is none or it does not
    verify (whatever is there, brokers refuse it too)."""
    kv = await bucket(nc, DIRECTORY_BUCKET)
    try:
        entry = await kv.get(DIRECTORY_KEY)
    except KeyNotFoundError:
        return None
    if entry.value is None:
        return None
    try:
        return Directory.load(entry.value, root_public)
    except (CryptoError, KeysError):
        return None


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


class DirectoryWatcher(KeyWatcher):
    """Keeps `current` up to date and calls `on_change` with each verified version."""

    bucket_name, key = DIRECTORY_BUCKET, DIRECTORY_KEY

    def __init__(
        self,
        nc: NATS,
        initial: Directory,
        on_change: Callable[[Directory], None],
        *,
        broker_id: str = "keysync",
        clock: Clock = utcnow,
    ) -> None:
        super().__init__(nc, broker_id=broker_id, clock=clock)
        self.current = initial
        self.on_change = on_change

    async def apply(self, value: bytes, revision: int) -> bool:
        try:
            new = self.current.successor(Directory.load(value, self.current.root_public))
        except (CryptoError, KeysError) as exc:
            await self._refused(revision, exc)
            return False
        changes = key_changes(self.current, new)
        reissued = [(a, self.current.entry(a).serial if a in self.current.agencies() else 0,
                     new.entry(a).serial)
                    for a in new.agencies()
                    if a not in self.current.agencies()
                    or new.entry(a).serial != self.current.entry(a).serial]
        self.current = new
        self.on_change(new)
        log.info("directory_updated", revision=revision, changes=len(changes))
        for agency, kid, action in changes:
            event = AuditEvent(
                type=EventType.KEY_CHANGED, at=self.clock(), broker=self.broker_id,
                actor=agency, details={"key_id": kid, "action": action},
            )
            await self.audit(event, f"directory:{revision}:{kid}:{action}")
        for agency, before, after in reissued:
            event = AuditEvent(
                type=EventType.KEY_CHANGED, at=self.clock(), broker=self.broker_id,
                actor=agency, details={"action": "entry", "serial": str(after),
                                       "previous_serial": str(before)},
            )
            await self.audit(event, f"directory:{revision}:{agency}:entry:{after}")
        return True

    async def _refused(self, revision: int, exc: Exception) -> None:
        # A signature failure stays opaque (CryptoError); a rollback or malformed
        # directory names what was wrong: nothing secret is in it.
        if isinstance(exc, CryptoError):
            rule, reason = "directory.signature", "not signed by the federation root"
        elif isinstance(exc, RollbackError):
            rule, reason = "directory.rollback", str(exc)
        else:
            rule, reason = "directory.malformed", str(exc)
        event = AuditEvent(
            type=EventType.KEY_CHANGED, at=self.clock(), broker=self.broker_id,
            actor="unverified", rule=rule, reason=reason[:500],
            details={"action": "refused", "revision": str(revision)},
        )
        await self.audit(event, f"directory:{revision}:refused")
        log.error("directory_refused", revision=revision, rule=rule, reason=reason[:200])
