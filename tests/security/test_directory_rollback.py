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

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.audit.events import AuditEvent, decode_record
from broker.hosting.stack import DevStack
from broker.routing.keysync import DIRECTORY_BUCKET, DIRECTORY_KEY
from clients.sdk.client import AgencyClient
from keys.directory import Directory, FederationRoot
from keys.errors import DirectoryError
from keys.records import Revocation, RevocationList
from schemas.events import EventType


async def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def _audit_events(stack: DevStack) -> list[AuditEvent]:
    nc = await stack.broker_connection("audit-read")
    try:
        js = nc.jetstream()
        last = (await js.stream_info("AUDIT")).state.last_seq
        return [decode_record((await js.get_msg("AUDIT", q)).data or b"").event
                for q in range(1, last + 1)]
    finally:
        await nc.close()


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
    evil = await stack.operator_connection("evil")
    try:
        kv = await evil.jetstream().key_value(DIRECTORY_BUCKET)
        before = (await kv.get(DIRECTORY_KEY)).value
        assert before is not None
        await _revoke(stack, kid, "TH-AHTD")

        async def revoked() -> bool:
            return stack.brokers[0].directory.revocation(kid) is not None
        await _until(revoked)

        # The attack: the pre-revocation directory, genuinely root-signed, written back.
        await kv.put(DIRECTORY_KEY, before)

        async def refusal_logged() -> bool:
            return any(e.type == EventType.KEY_CHANGED and e.details.get("action") == "refused"
                       for e in await _audit_events(stack))
        await _until(refusal_logged)
    finally:
        await evil.close()

    assert stack.brokers[0].directory.revocation(kid) is not None
    assert stack.keysync is not None and stack.keysync.current.revocation(kid) is not None
    refused = [e for e in await _audit_events(stack)
               if e.type == EventType.KEY_CHANGED and e.details.get("action") == "refused"]
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
    await _until(revoked)
    await kh.refresh_directory()
    assert kh.directory.revocation(kid) is not None

    # A compromised (or merely stale) broker serves the directory from before.
    stack.brokers[0].directory = stale
    with pytest.raises(DirectoryError, match="rollback"):
        await kh.refresh_directory()
    assert kh.directory.revocation(kid) is not None
