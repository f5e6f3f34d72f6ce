"""An older root-signed key directory written back to the bucket must not undo a
revocation (issue 13, item 4).

Every version the root ever signed verifies against the pinned root key, so the
signature alone cannot tell a replayed old directory from the current one. What does
is the serials: each entry's and the revocation list's only go up. The attacker here
holds a service credential (the one that may write the directory bucket) and writes the
directory from before the revocation back; brokers must keep the revocation and log
the refusal, and a client served the stale copy by a broker must refuse it too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.hosting.stack import DevStack
from broker.routing.keysync import DIRECTORY_BUCKET, DIRECTORY_KEY
from clients.sdk.client import AgencyClient
from keys.directory import Directory, FederationRoot
from keys.errors import DirectoryError
from keys.records import Revocation, RevocationList
from schemas.events import EventType
from tests.support.buckets import changes, read_value, until, wait_changes, write_value


async def _revoke(stack: DevStack, kid: str, agency: str) -> None:
    assert stack.connection is not None
    root = FederationRoot.load(stack.data_dir / "keys" / "root.key", stack.passphrase())
    path = Path(stack.connection.directory)
    d = Directory.load(path.read_bytes(), root.public_bytes)
    now = datetime.now(UTC)
    rl = RevocationList(serial=d.revocations.serial + 1, issued_at=now,
                        revocations=[Revocation(kid, agency, now - timedelta(seconds=1),
                                                "compromised")])
    d.set_revocations(root.sign_revocations(rl))
    path.write_bytes(d.dump())
    await stack.publish_directory()


async def test_older_signed_directory_written_back_does_not_undo_a_revocation(
    stack: DevStack, agency  # type: ignore[no-untyped-def]
) -> None:
    th: AgencyClient = await agency("TH-AHTD")
    kid = th.identity.signing_key_id
    before = await read_value(stack, DIRECTORY_BUCKET, DIRECTORY_KEY)
    await _revoke(stack, kid, "TH-AHTD")

    async def revoked() -> bool:
        return stack.brokers[0].directory.revocation(kid) is not None
    await until(revoked)

    # The attack: the pre-revocation directory, genuinely root-signed, written back.
    await write_value(stack, DIRECTORY_BUCKET, DIRECTORY_KEY, before)
    await wait_changes(stack, EventType.KEY_CHANGED, "refused")

    assert stack.brokers[0].directory.revocation(kid) is not None
    assert stack.keysync is not None and stack.keysync.current.revocation(kid) is not None
    refused = await changes(stack, EventType.KEY_CHANGED, "refused")
    assert refused[0].rule == "directory.rollback"
    assert refused[0].reason is not None and "revocation list serial" in refused[0].reason


async def test_client_refuses_an_older_directory_served_by_a_broker(
    stack: DevStack, agency  # type: ignore[no-untyped-def]
) -> None:
    th: AgencyClient = await agency("TH-AHTD")
    kh: AgencyClient = await agency("KH-AHTJP")
    kid = th.identity.signing_key_id
    stale = stack.brokers[0].directory
    await _revoke(stack, kid, "TH-AHTD")

    async def revoked() -> bool:
        return stack.brokers[0].directory.revocation(kid) is not None
    await until(revoked)
    await kh.refresh_directory()
    assert kh.directory.revocation(kid) is not None

    # A compromised (or merely stale) broker serves the directory from before.
    stack.brokers[0].directory = stale
    with pytest.raises(DirectoryError, match="rollback"):
        await kh.refresh_directory()
    assert kh.directory.revocation(kid) is not None
