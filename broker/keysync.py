"""Live key directory: rotations and revocations reach every broker within seconds.

The signed directory lives in a JetStream key-value bucket that only brokers (and the
operator's tools, which use broker credentials) may write. Every broker watches it,
verifies each new version against the pinned federation root before using it (a forged
or rolled-back directory is refused and the old one kept), and logs what changed as
`key_changed` audit events. Agencies fetch the current directory from the brokers
(`orcon.directory.<agency>`), never from the bucket, and verify it the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from nats.aio.client import Client as NATS

from broker.audit.events import AuditEvent, EventType
from broker.kvwatch import KeyWatcher, bucket
from keys.directory import Directory
from keys.errors import CryptoError, KeysError

log = structlog.get_logger("orcon.keysync")

DIRECTORY_BUCKET = "orcon-directory"
DIRECTORY_KEY = "current"


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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(nc, broker_id=broker_id, clock=clock)
        self.current = initial
        self.on_change = on_change

    async def apply(self, value: bytes, revision: int) -> bool:
        try:
            new = Directory.load(value, self.current.root_public)
        except (CryptoError, KeysError) as exc:
            log.error("directory_refused", revision=revision, error=type(exc).__name__)
            return False
        changes = key_changes(self.current, new)
        self.current = new
        self.on_change(new)
        log.info("directory_updated", revision=revision, changes=len(changes))
        for agency, kid, action in changes:
            event = AuditEvent(
                type=EventType.KEY_CHANGED, at=self.clock(), broker=self.broker_id,
                actor=agency, details={"key_id": kid, "action": action},
            )
            await self.audit(event, f"directory:{revision}:{kid}:{action}")
        return True
