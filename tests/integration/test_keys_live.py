"""Rotation and revocation reach running brokers and clients within seconds, through
the root-signed directory in a JetStream key-value bucket, and are audited."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.audit.events import decode_record
from broker.hosting.stack import DevStack
from clients.sdk.client import AgencyClient
from keys.directory import Directory, FederationRoot
from keys.keyfile import load_identity
from keys.records import Revocation, RevocationList
from policies.federation import load_federation
from schemas import Category, Level, examples
from schemas.events import EventType


def _root_and_directory(stack: DevStack) -> tuple[FederationRoot, Directory, Path]:
    assert stack.connection is not None
    root = FederationRoot.load(stack.data_dir / "keys" / "root.key", stack.passphrase())
    path = Path(stack.connection.directory)
    return root, Directory.load(path.read_bytes(), root.public_bytes), path


async def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_revoked_signing_key_is_refused_by_the_broker_within_seconds(
    stack: DevStack, agency  # type: ignore[no-untyped-def]
) -> None:
    th: AgencyClient = await agency("TH-AHTD")
    sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.RESTRICTED, to=["KH-AHTJP"])
    assert (await th.wait_outcome(sent.header.id)).delivered == ["KH-AHTJP"]

    root, directory, path = _root_and_directory(stack)
    now = datetime.now(UTC)
    revoked = RevocationList(serial=directory.revocations.serial + 1, issued_at=now,
                             revocations=[Revocation(th.identity.signing_key_id, "TH-AHTD",
                                                     now - timedelta(seconds=1), "compromised")])
    directory.set_revocations(root.sign_revocations(revoked))
    path.write_bytes(directory.dump())
    await stack.publish_directory()
    assert stack.brokers
    await _until(lambda: stack.brokers[0].directory.revocation(th.identity.signing_key_id)
                 is not None)

    sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.RESTRICTED, to=["KH-AHTJP"], resolve=False)
    outcome = await th.wait_outcome(sent.header.id)
    assert outcome.status == "rejected"
    assert outcome.error is not None and outcome.error.startswith("sender.key")

    assert stack.audit is not None
    await _until(lambda: stack.audit is not None and stack.audit.size >= 4)
    nc = await stack.broker_connection("t")
    try:
        js = nc.jetstream()
        info = await js.stream_info("AUDIT")
        types = []
        for seq in range(1, info.state.last_seq + 1):
            rec = decode_record((await js.get_msg("AUDIT", seq)).data or b"")
            types.append((rec.event.type, rec.event.details.get("action")))
        assert (EventType.KEY_CHANGED, "revoked") in types
        assert (EventType.REJECTED, None) in types
    finally:
        await nc.close()


async def test_rotated_recipient_key_is_used_and_old_key_opens_during_overlap(
    stack: DevStack, agency  # type: ignore[no-untyped-def]
) -> None:
    th: AgencyClient = await agency("TH-AHTD")
    th.directory_max_age = 0.0
    kh: AgencyClient = await agency("KH-AHTJP")
    old_sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                             level=Level.RESTRICTED, to=["KH-AHTJP"])
    await th.wait_outcome(old_sent.header.id)
    old_kid = kh.identity.kem_keys[0].key_id

    # KH rotates; the root signs its new entry; the directory is republished.
    now = datetime.now(UTC)
    kh.identity.rotate(now, overlap=timedelta(days=7))
    root, directory, path = _root_and_directory(stack)
    fed = load_federation(stack.data_dir / "federation.toml")
    a = fed.agency("KH-AHTJP")
    directory.add(root.sign_entry(kh.identity.directory_entry(
        country=a.country, roles=[str(r) for r in a.roles], clearance=str(a.clearance),
        now=now)))
    path.write_bytes(directory.dump())
    await stack.publish_directory()
    await _until(lambda: old_kid not in {r.key_id for r in
                 stack.brokers[0].directory.recipients_for("KH-AHTJP", now)})

    new_sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                             level=Level.RESTRICTED, to=["KH-AHTJP"])
    await th.wait_outcome(new_sent.header.id)
    batch = await kh.inbox(timeout=5)
    while len(batch.messages) < 2:
        more = await kh.inbox(timeout=2)
        assert more.messages or more.rejected, "deliveries missing"
        batch.messages += more.messages
    assert {m.header.id for m in batch.messages} == {old_sent.header.id, new_sent.header.id}
    assert batch.rejected == []
    # The old identity file still holds only the old key: it cannot open the new message.
    stale = load_identity(stack.data_dir / "keys" / "KH-AHTJP.key", stack.passphrase())
    assert old_kid in {k.key_id for k in stale.kem_keys}
    assert len(stale.kem_keys) == 1
