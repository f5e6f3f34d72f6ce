"""Tampering, by a sender's network or by a compromised broker, is caught: the broker
rejects submissions that do not verify, and recipients reject deliveries that do not
verify (so a broker cannot forge, add recipients or alter restrictions)."""

from __future__ import annotations

import msgspec

import schemas
from broker.hosting.stack import DevStack
from clients.sdk.client import AgencyClient
from keys.envelope import for_recipient, seal
from schemas import Category, Level, Restrictions
from transport import subjects as s


def _sealed(client: AgencyClient, to: list[str], **header_fields: object) -> schemas.Envelope:
    body = schemas.IntelReport(title="t", narrative=schemas.Narrative(text="secret", lang="en"))
    header = client.draft(body, category=Category.ROUTES, level=Level.RESTRICTED, to=to,
                          **header_fields)  # type: ignore[arg-type]
    recipients = [r for a in to for r in client.directory.recipients_for(a, client.clock())]
    return seal(schemas.encode(header), schemas.encode(body), recipients, client.identity)


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


async def _submit_raw(client: AgencyClient, env: schemas.Envelope, msg_id: str) -> None:
    await client.js.publish(s.submit(client.agency), schemas.encode_envelope(env),
                            headers={"Nats-Msg-Id": msg_id})


async def test_broker_rejects_tampered_submissions(agency) -> None:  # type: ignore[no-untyped-def]
    th = await agency("TH-AHTD")
    kh = await agency("KH-AHTJP")
    cases = {}
    env = _sealed(th, ["KH-AHTJP"])
    cases["header"] = msgspec.structs.replace(env, header=_flip(env.header, len(env.header) - 3))
    env = _sealed(th, ["KH-AHTJP"])
    cases["body"] = msgspec.structs.replace(env, ciphertext=_flip(env.ciphertext, 20))
    env = _sealed(th, ["KH-AHTJP"])
    cases["signature"] = msgspec.structs.replace(env, signature=_flip(env.signature, 5))
    ids = {}
    for name, tampered in cases.items():
        header = msgspec.msgpack.decode(tampered.header)
        ids[header["id"]] = name
        await _submit_raw(th, tampered, f"tamper-{name}")
    outcomes = {}
    while len(outcomes) < len(cases):
        for o in await th.outcomes(timeout=5):
            outcomes[o.message_id] = o
    for mid, name in ids.items():
        if name == "header":  # the flipped byte may break the id itself; find by status
            continue
        assert outcomes[mid].status == "rejected", name
        assert outcomes[mid].error and outcomes[mid].error.startswith("signature"), name
    assert all(o.status == "rejected" and not o.delivered for o in outcomes.values())
    assert (await kh.inbox(timeout=0.5)).messages == []


async def test_recipient_rejects_what_a_compromised_broker_alters(
    stack: DevStack, agency  # type: ignore[no-untyped-def]
) -> None:
    th, kh = await agency("TH-AHTD"), await agency("KH-AHTJP")
    nc = await stack.broker_connection("evil")
    js = nc.jetstream()
    try:
        forged: dict[str, schemas.Envelope] = {}
        env = for_recipient(_sealed(th, ["KH-AHTJP"]), "KH-AHTJP")
        forged["header bit"] = msgspec.structs.replace(env, header=_flip(env.header, 40))
        env = for_recipient(_sealed(th, ["KH-AHTJP"]), "KH-AHTJP")
        st = env.stanzas[0]
        forged["stanza"] = msgspec.structs.replace(
            env, stanzas=[msgspec.structs.replace(st, enc=_flip(st.enc, 3))])
        env = for_recipient(_sealed(th, ["KH-AHTJP"]), "KH-AHTJP")
        forged["body"] = msgspec.structs.replace(env, ciphertext=_flip(env.ciphertext, 30))
        # Loosened restrictions: re-encode the header without the exclusion.
        env = for_recipient(_sealed(th, ["KH-AHTJP"],
                                    restrictions=Restrictions(no_evidential_use=True)),
                            "KH-AHTJP")
        h = schemas.decode_header(env.header)
        loosened = msgspec.structs.replace(h, restrictions=Restrictions())
        forged["restrictions"] = msgspec.structs.replace(env, header=schemas.encode(loosened))
        # A recipient the sender never named: the broker relabels the stanza.
        env = for_recipient(_sealed(th, ["VN-MPS"]), "VN-MPS")
        forged["added recipient"] = msgspec.structs.replace(
            env, stanzas=[msgspec.structs.replace(env.stanzas[0], recipient="KH-AHTJP")])
        for i, f in enumerate(forged.values()):
            await js.publish(s.deliver("KH-AHTJP"), schemas.encode_envelope(f),
                             headers={"Nats-Msg-Id": f"forged-{i}"})
        batch = await kh.inbox(timeout=5)
        while len(batch.rejected) < len(forged):
            more = await kh.inbox(timeout=2)
            if not more.rejected and not more.messages:
                break
            batch.rejected += more.rejected
            batch.messages += more.messages
        assert batch.messages == []
        assert len(batch.rejected) == len(forged)
    finally:
        await nc.close()


async def test_recipient_refuses_a_genuine_envelope_policy_refused_it(
    stack: DevStack, agency  # type: ignore[no-untyped-def]
) -> None:
    """A compromised broker hands a correctly signed envelope to recipients the sender
    named but the policy refused: each recipient's SDK checks what it can about itself
    (excluded by id or country, clearance, auditor role) and refuses."""
    th = await agency("TH-AHTD")
    mm, la = await agency("MM-ATIPD"), await agency("LA-MPS")
    env = _sealed(th, ["LA-MPS", "MM-ATIPD"], restrictions=Restrictions(exclude=["MM"]))
    env = msgspec.structs.replace(env, header=schemas.encode(msgspec.structs.replace(
        schemas.decode_header(env.header), level=Level.CONFIDENTIAL)))
    # Re-sign: the sender really did sign this header (an honest sender, a rogue broker).
    env = seal(env.header, schemas.encode(schemas.IntelReport(
        title="t", narrative=schemas.Narrative(text="secret", lang="en"))),
        [r for a in ("LA-MPS", "MM-ATIPD") for r in th.directory.recipients_for(a, th.clock())],
        th.identity)
    nc = await stack.broker_connection("evil")
    try:
        js = nc.jetstream()
        for who in ("MM-ATIPD", "LA-MPS"):
            await js.publish(s.deliver(who), schemas.encode_envelope(for_recipient(env, who)),
                             headers={"Nats-Msg-Id": f"rogue-{who}"})
        got_mm, got_la = await mm.inbox(timeout=5), await la.inbox(timeout=5)
    finally:
        await nc.close()
    assert got_mm.messages == [] and got_la.messages == []
    assert "excluded by the sender (exclude = MM)" in got_mm.rejected[0].reason
    assert "clearance RESTRICTED is below CONFIDENTIAL" in got_la.rejected[0].reason
