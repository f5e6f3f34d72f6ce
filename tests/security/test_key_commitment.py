"""One signed envelope must open to one plaintext, for every recipient.

ChaCha20-Poly1305 is not key-committing: Poly1305 is linear in the ciphertext blocks, so
a sender can solve for one 16-byte block that makes the same ciphertext authenticate
under two keys of its choice (the key multi-collision behind partitioning-oracle and
"invisible salamander" attacks; Len, Grubbs, Ristenpart, USENIX Security 2021). A
malicious sender then wraps key 1 for recipient A and key 2 for recipient B: one
signature, one audit record, two different plaintexts, and no recipient can prove what
it received. The signed header therefore commits to the content key and a recipient
checks the unwrapped key against it before decrypting.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

import schemas
from broker.hosting.stack import DevStack
from clients.sdk.client import AgencyClient
from keys.envelope import (
    add_stanzas,
    for_recipient,
    header_hash,
    key_commitment,
    open_envelope,
    signed_message,
    unwrap_content_key,
)
from keys.errors import CryptoError, UnknownRecipient
from keys.identity import Identity, Recipient
from schemas import Category, Level, examples
from schemas.envelope import ENVELOPE_VERSION
from transport import subjects as s

NOW = datetime(2025, 6, 1, tzinfo=UTC)
_P = 2**130 - 5
_CLAMP = 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
_FULL = 1 << 128  # the "1" byte Poly1305 appends to every full 16-byte block


def _poly_key(key: bytes, nonce: bytes) -> tuple[int, int]:
    """Poly1305's (r, s) for one ChaCha20-Poly1305 message (RFC 8439 2.6: block 0)."""
    otk = Cipher(algorithms.ChaCha20(key, bytes(4) + nonce), mode=None).encryptor()
    block = otk.update(bytes(32))
    return int.from_bytes(block[:16], "little") & _CLAMP, int.from_bytes(block[16:], "little")


def _mac_blocks(ad: bytes, ct: bytes) -> list[int]:
    """RFC 8439 2.8 mac_data as Poly1305 block values (every block is padded to 16)."""
    def pad(b: bytes) -> bytes:
        return bytes(-len(b) % 16)

    data = ad + pad(ad) + ct + pad(ct) + len(ad).to_bytes(8, "little") + len(ct).to_bytes(
        8, "little")
    return [int.from_bytes(data[i:i + 16], "little") + _FULL for i in range(0, len(data), 16)]


def _acc(blocks: Sequence[int], r: int) -> int:
    acc = 0
    for b in blocks:
        acc = (acc + b) * r % _P
    return acc


def colliding_ciphertext(
    k1: bytes, k2: bytes, ad: bytes, plain1: bytes, rng: random.Random
) -> bytes:
    """`nonce || C || tag` that ChaCha20-Poly1305 opens under both `k1` and `k2` with
    associated data `ad`; under `k1` it starts with `plain1`. The last block of C is
    solved for: with acc_i = A_i + Y * r_i^e (mod p), the tags agree when
    acc_1 - acc_2 = s_2 - s_1 (mod 2^128), one linear equation mod p in Y."""
    plain1 += b" " * (-len(plain1) % 16)
    for _ in range(200):  # each nonce succeeds with probability about 1/4
        nonce = rng.randbytes(12)
        prefix = ChaCha20Poly1305(k1).encrypt(nonce, plain1, ad)[:-16]
        (r1, s1), (r2, s2) = _poly_key(k1, nonce), _poly_key(k2, nonce)
        blocks = _mac_blocks(ad, prefix + bytes(16))
        e = 2  # the solved block is followed by the length block only
        a1, a2 = _acc(blocks, r1), _acc(blocks, r2)
        denom = (pow(r1, e, _P) - pow(r2, e, _P)) % _P
        if denom == 0:
            continue
        inv = pow(denom, -1, _P)
        for k in range(-3, 4):
            target = (s2 - s1) % _FULL + k * _FULL
            y = (target - a1 + a2) * inv % _P
            if y >= _FULL:
                continue
            ct = prefix + y.to_bytes(16, "little")
            blocks = _mac_blocks(ad, ct)
            t1, t2 = (_acc(blocks, r1) + s1) % _FULL, (_acc(blocks, r2) + s2) % _FULL
            if t1 == t2:
                return nonce + ct + t1.to_bytes(16, "little")
    raise AssertionError("no collision found in 200 nonces")  # probability ~2^-80


def _craft(
    header: schemas.Header, body: bytes, sender: Identity, a: Recipient, b: Recipient,
    rng: random.Random,
) -> tuple[schemas.Envelope, bytes, bytes]:
    """The malicious sender's envelope: A's stanza wraps k1, B's wraps k2, one
    ciphertext valid under both, signed once. The header commits to k1 (it can commit
    to one key only; committing to none is refused at decoding)."""
    k1, k2 = rng.randbytes(32), rng.randbytes(32)
    header = msgspec.structs.replace(header, key_commitment=key_commitment(k1))
    header_bytes = schemas.encode(header)
    hh = header_hash(header_bytes)
    ct = colliding_ciphertext(k1, k2, hh, body, rng)
    env = schemas.Envelope(
        v=ENVELOPE_VERSION,
        header=header_bytes,
        signature=sender.sign(signed_message(hh, ct)),
        stanzas=[a.wrap(k1, hh), b.wrap(k2, hh)],
        ciphertext=ct,
    )
    return env, k1, k2


def test_the_collision_is_real() -> None:
    """The construction itself (so the tests below cannot pass for a wrong reason)."""
    rng = random.Random(13)
    k1, k2, ad = rng.randbytes(32), rng.randbytes(32), os.urandom(32)
    wire = colliding_ciphertext(k1, k2, ad, b"route report for A", rng)
    p1 = ChaCha20Poly1305(k1).decrypt(wire[:12], wire[12:], ad)
    p2 = ChaCha20Poly1305(k2).decrypt(wire[:12], wire[12:], ad)
    assert p1.startswith(b"route report for A") and p1 != p2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_envelope_never_opens_to_two_plaintexts(seed: int) -> None:
    rng = random.Random(seed)
    sender = Identity.generate("TH-AHTD", now=NOW)
    alice, bob = Identity.generate("KH-AHTJP", now=NOW), Identity.generate("MM-ATIPD", now=NOW)
    body = schemas.encode(examples.mekong_route_report())
    header = examples.example_header(examples.mekong_route_report(), sender="TH-AHTD",
                                     recipients=("KH-AHTJP", "MM-ATIPD"))
    env, _, _ = _craft(header, body, sender, alice.recipients()[0], bob.recipients()[0], rng)

    opened = {}
    for ident in (alice, bob):
        with contextlib.suppress(CryptoError):
            opened[ident.agency] = open_envelope(env, ident, sender.signing_public, now=NOW)
    # Only the recipient whose key the signed header commits to opens it; on a
    # non-committing envelope both open, to different plaintexts.
    assert sorted(opened) == ["KH-AHTJP"]
    assert opened["KH-AHTJP"].startswith(body)


async def test_malicious_sender_split_view_through_the_broker(
    stack: DevStack, agency  # type: ignore[no-untyped-def]
) -> None:
    """Against a real nats-server and broker: the broker cannot see the split (it holds
    no key), so the recipient must: B refuses, with the opaque crypto error, the
    envelope A opens."""
    th: AgencyClient = await agency("TH-AHTD")
    kh: AgencyClient = await agency("KH-AHTJP")
    mm: AgencyClient = await agency("MM-ATIPD")
    rng = random.Random(7)
    report = examples.mekong_route_report()
    draft = th.draft(report, category=Category.ROUTES, level=Level.RESTRICTED,
                     to=["KH-AHTJP", "MM-ATIPD"])
    now = th.clock()
    [a] = th.directory.recipients_for("KH-AHTJP", now)
    [b] = th.directory.recipients_for("MM-ATIPD", now)
    env, _, _ = _craft(draft, schemas.encode(report), th.identity, a, b, rng)
    await th.js.publish(s.submit("TH-AHTD"), schemas.encode_envelope(env),
                        headers={"Nats-Msg-Id": draft.id})
    outcome = await th.wait_outcome(draft.id)
    assert outcome.status == "routed", outcome
    assert sorted(outcome.delivered) == ["KH-AHTJP", "MM-ATIPD"]

    signer = th.identity.signing_public
    plaintexts: dict[str, bytes] = {}
    for client in (kh, mm):
        msgs = []
        for _ in range(50):  # bounded: deliveries arrive within a second or two
            msgs = await client.fetch_deliveries(1, timeout=0.2)
            if msgs:
                break
            await asyncio.sleep(0.05)
        assert len(msgs) == 1, f"no delivery for {client.agency}"
        delivered = schemas.decode_envelope(msgs[0].data)
        assert delivered.ciphertext == env.ciphertext  # one signed message for both
        with contextlib.suppress(CryptoError):
            plaintexts[client.agency] = open_envelope(delivered, client.identity, signer,
                                                      now=client.clock())
        await msgs[0].ack()
    assert sorted(plaintexts) == ["KH-AHTJP"]  # both would open, to different plaintexts
    # The SDK reports it as the one opaque cryptographic failure.
    rejection = mm.open_delivery(schemas.encode_envelope(env))
    assert rejection is not None and not hasattr(rejection, "body")
    assert "cryptographic verification failed" in rejection.reason


async def test_envelope_without_commitment_is_refused_by_the_broker(
    stack: DevStack, agency  # type: ignore[no-untyped-def]
) -> None:
    """A validly signed envelope whose header commits to no key is rejected before
    routing, with the field named: no recipient could check what it opens."""
    th: AgencyClient = await agency("TH-AHTD")
    report = examples.mekong_route_report()
    draft = th.draft(report, category=Category.ROUTES, level=Level.RESTRICTED,
                     to=["KH-AHTJP"])
    now = th.clock()
    [a] = th.directory.recipients_for("KH-AHTJP", now)
    key, nonce = os.urandom(32), os.urandom(12)
    header_bytes = schemas.encode(draft)  # no key_commitment
    hh = header_hash(header_bytes)
    ct = nonce + ChaCha20Poly1305(key).encrypt(nonce, schemas.encode(report), hh)
    env = schemas.Envelope(v=ENVELOPE_VERSION, header=header_bytes,
                           signature=th.identity.sign(signed_message(hh, ct)),
                           stanzas=[a.wrap(key, hh)], ciphertext=ct)
    await th.js.publish(s.submit("TH-AHTD"), schemas.encode_envelope(env),
                        headers={"Nats-Msg-Id": draft.id})
    outcome = await th.wait_outcome(draft.id)
    assert outcome.status == "rejected" and outcome.delivered == []
    assert "envelope.header.key_commitment" in (outcome.error or "")


def test_forward_cannot_rewrap_an_uncommitted_key() -> None:
    """The forward path (re-wrapping the content key to a third party) refuses a key the
    header does not commit to, and a holder only ever extracts the committed key."""
    rng = random.Random(11)
    sender = Identity.generate("TH-AHTD", now=NOW)
    alice, bob = Identity.generate("KH-AHTJP", now=NOW), Identity.generate("MM-ATIPD", now=NOW)
    third = Identity.generate("LA-NCB", now=NOW)
    body = schemas.encode(examples.mekong_route_report())
    header = examples.example_header(examples.mekong_route_report(), sender="TH-AHTD",
                                     recipients=("KH-AHTJP", "MM-ATIPD"))
    env, k1, k2 = _craft(header, body, sender, alice.recipients()[0], bob.recipients()[0], rng)
    assert unwrap_content_key(env, alice, sender.signing_public, now=NOW) == k1
    with pytest.raises(UnknownRecipient):  # bob's stanza holds k2: nothing bob can forward
        unwrap_content_key(env, bob, sender.signing_public, now=NOW)
    with pytest.raises(CryptoError):
        add_stanzas(env, k2, third.recipients())
    forwarded = add_stanzas(for_recipient(env, "nobody"), k1, third.recipients())
    assert open_envelope(forwarded, third, sender.signing_public, now=NOW).startswith(body)
