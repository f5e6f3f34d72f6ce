"""Seal/open round trips and tamper resistance of the envelope."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys.envelope import (
    commit_header,
    for_recipient,
    header_hash,
    key_commitment,
    open_envelope,
    seal,
    signed_message,
    verify,
)
from keys.errors import CryptoError, KeyExpired, UnknownRecipient, UnsupportedSuite
from keys.identity import Identity
from schemas.envelope import (
    ENVELOPE_VERSION,
    Envelope,
    decode_envelope,
    encode_envelope,
    read_key_commitment,
)
from tests.support.keys import NOW, SUITES, flip, sample_bits

# The envelope layer reads one header field (the key commitment it adds); any map will do.
HEADER = msgspec.msgpack.encode({"v": "1.0", "id": "TESTHEADER0000000000000000",
                                 "sender": "IT-SC"})
OTHER_HEADER = msgspec.msgpack.encode({"v": "1.0", "id": "TESTHEADER0000000000000001",
                                       "sender": "IT-SC"})
BODY = b"route: Zuwara -> Lampedusa; vessel: wooden boat, 40 persons" * 4

replace = msgspec.structs.replace


def fixed_rand(content_key: bytes = b"K" * 32, nonce: bytes = b"N" * 12) -> Callable[[int], bytes]:
    stream: Iterator[bytes] = iter([content_key, nonce])
    return lambda n: next(stream)


@pytest.fixture(scope="module", params=SUITES)
def suite(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def alice(suite: str) -> Identity:
    return Identity.generate("IT-SCO", suites=(suite,), now=NOW)


@pytest.fixture(scope="module")
def bob(suite: str) -> Identity:
    return Identity.generate("GR-HP", suites=(suite,), now=NOW)


@pytest.fixture(scope="module")
def sender() -> Identity:
    return Identity.generate("LY-NCB", now=NOW)


@pytest.fixture(scope="module")
def env(alice: Identity, bob: Identity, sender: Identity) -> Envelope:
    return seal(HEADER, BODY, alice.recipients() + bob.recipients(), sender)


def test_round_trip_each_recipient(env: Envelope, alice: Identity, bob: Identity,
                                   sender: Identity, suite: str) -> None:
    assert env.v == ENVELOPE_VERSION
    assert [s.suite for s in env.stanzas] == [suite, suite]
    for ident in (alice, bob):
        assert open_envelope(env, ident, sender.signing_public, now=NOW) == BODY
        delivery = for_recipient(env, ident.agency)
        assert [s.recipient for s in delivery.stanzas] == [ident.agency]
        assert open_envelope(delivery, ident, sender.signing_public, now=NOW) == BODY
    # and through the wire encoding
    wire = decode_envelope(encode_envelope(env))
    assert open_envelope(wire, alice, sender.signing_public, now=NOW) == BODY


def test_body_is_not_in_the_clear(env: Envelope) -> None:
    assert BODY[:16] not in env.ciphertext
    assert all(BODY[:16] not in s.enc for s in env.stanzas)


def test_for_recipient_drops_others(env: Envelope, bob: Identity, sender: Identity) -> None:
    only_alice = for_recipient(env, "IT-SCO")
    verify(only_alice, sender.signing_public)  # the broker can drop stanzas
    with pytest.raises(UnknownRecipient):
        open_envelope(only_alice, bob, sender.signing_public, now=NOW)
    assert for_recipient(env, "NOBODY").stanzas == []


def test_header_bit_flips_rejected(env: Envelope, alice: Identity, sender: Identity) -> None:
    for bit in sample_bits(len(env.header)):
        bad = replace(env, header=flip(env.header, bit))
        with pytest.raises(CryptoError):
            verify(bad, sender.signing_public)
        with pytest.raises(CryptoError):
            open_envelope(bad, alice, sender.signing_public, now=NOW)


def test_ciphertext_bit_flips_rejected(env: Envelope, alice: Identity, sender: Identity) -> None:
    for bit in sample_bits(len(env.ciphertext)):
        bad = replace(env, ciphertext=flip(env.ciphertext, bit))
        with pytest.raises(CryptoError):
            open_envelope(bad, alice, sender.signing_public, now=NOW)


def test_signature_bit_flips_rejected(env: Envelope, alice: Identity, sender: Identity) -> None:
    for bit in range(len(env.signature) * 8):  # 512 bits: all of them
        bad = replace(env, signature=flip(env.signature, bit))
        with pytest.raises(CryptoError):
            open_envelope(bad, alice, sender.signing_public, now=NOW)


def test_stanza_enc_bit_flips_rejected(env: Envelope, alice: Identity, bob: Identity,
                                       sender: Identity) -> None:
    # Bit 255 is the one X25519 ignores in a public value (RFC 7748): HPKE still rejects
    # the flip because the KEM context hashes enc itself.
    for i, ident in enumerate((alice, bob)):
        stanza = env.stanzas[i]
        for bit in sample_bits(len(stanza.enc), always=(255,)):
            stanzas = list(env.stanzas)
            stanzas[i] = replace(stanza, enc=flip(stanza.enc, bit))
            with pytest.raises(CryptoError):
                open_envelope(replace(env, stanzas=stanzas), ident, sender.signing_public,
                              now=NOW)
            with pytest.raises(CryptoError):
                ident.unwrap(stanzas[i], header_hash(env.header))


def test_truncated_fields_rejected(env: Envelope, alice: Identity, sender: Identity) -> None:
    st0 = env.stanzas[0]
    for bad in (
        replace(env, ciphertext=env.ciphertext[:-1]),
        replace(env, ciphertext=b""),
        replace(env, signature=env.signature[:-1]),
        replace(env, stanzas=[replace(st0, enc=st0.enc[:-1])]),
        replace(env, stanzas=[replace(st0, enc=b"")]),
    ):
        with pytest.raises(CryptoError):
            open_envelope(bad, alice, sender.signing_public, now=NOW)


def test_wrong_signer_key(env: Envelope, alice: Identity) -> None:
    other = Identity.generate("LY-NCB", now=NOW)
    with pytest.raises(CryptoError):
        open_envelope(env, alice, other.signing_public, now=NOW)


def test_wrong_identity_same_agency(env: Envelope, sender: Identity, suite: str) -> None:
    impostor = Identity.generate("IT-SCO", suites=(suite,), now=NOW)
    with pytest.raises(UnknownRecipient):  # holds none of the keys the stanzas name
        open_envelope(env, impostor, sender.signing_public, now=NOW)


def test_stanza_moved_to_another_message(alice: Identity, sender: Identity) -> None:
    # Both messages share content key and nonce, so only the HPKE info (header hash)
    # stops the stanza of one from opening the other.
    m1 = seal(HEADER, BODY, alice.recipients(), sender, rand=fixed_rand())
    m2 = seal(OTHER_HEADER, BODY, alice.recipients(), sender, rand=fixed_rand())
    assert open_envelope(m2, alice, sender.signing_public, now=NOW) == BODY
    moved = replace(m2, stanzas=m1.stanzas)
    with pytest.raises(CryptoError):
        open_envelope(moved, alice, sender.signing_public, now=NOW)


def test_stanza_relabelled_to_another_recipient(env: Envelope, alice: Identity,
                                                bob: Identity, sender: Identity) -> None:
    # An identity holding alice's very keys under another agency id: only the agency id
    # in the HPKE info tells the stanzas apart.
    twin = Identity("GR-HP", alice.signing_keys, alice.kem_keys)
    relabelled = replace(env.stanzas[0], recipient="GR-HP")
    with pytest.raises(CryptoError):
        open_envelope(replace(env, stanzas=[relabelled]), twin, sender.signing_public, now=NOW)
    # alice's stanza relabelled as bob's key
    as_bob = replace(env.stanzas[0], recipient="GR-HP", key_id=env.stanzas[1].key_id)
    with pytest.raises(CryptoError):
        open_envelope(replace(env, stanzas=[as_bob]), bob, sender.signing_public, now=NOW)


def test_stanza_suite_relabelled(env: Envelope, alice: Identity, sender: Identity,
                                 suite: str) -> None:
    other = next(s for s in SUITES if s != suite)
    bad = replace(env, stanzas=[replace(env.stanzas[0], suite=other)])
    with pytest.raises(CryptoError):
        open_envelope(bad, alice, sender.signing_public, now=NOW)
    bad = replace(env, stanzas=[replace(env.stanzas[0], suite="rsa1024")])
    with pytest.raises(UnsupportedSuite):
        open_envelope(bad, alice, sender.signing_public, now=NOW)


def test_unsupported_envelope_version(env: Envelope, alice: Identity, sender: Identity) -> None:
    with pytest.raises(UnsupportedSuite):
        open_envelope(replace(env, v=2), alice, sender.signing_public, now=NOW)


def test_expired_key_refused(suite: str, sender: Identity) -> None:
    from datetime import timedelta

    ident = Identity.generate("IT-SCO", suites=(suite,), now=NOW)
    env = seal(HEADER, BODY, ident.recipients(), sender)
    ident.rotate(NOW, timedelta(days=1))
    assert open_envelope(env, ident, sender.signing_public, now=NOW + timedelta(hours=23)) == BODY
    with pytest.raises(KeyExpired):
        open_envelope(env, ident, sender.signing_public, now=NOW + timedelta(days=1))


def test_seal_injected_randomness_is_deterministic_except_stanzas(
    alice: Identity, sender: Identity
) -> None:
    a = seal(HEADER, BODY, alice.recipients(), sender, rand=fixed_rand())
    b = seal(HEADER, BODY, alice.recipients(), sender, rand=fixed_rand())
    assert (a.ciphertext, a.signature) == (b.ciphertext, b.signature)
    assert a.ciphertext[:12] == b"N" * 12
    assert a.stanzas[0].enc != b.stanzas[0].enc  # fresh HPKE ephemeral key
    assert sender.signing_public.verify(a.signature, signed_message(
        header_hash(a.header), a.ciphertext)) is None


def test_seal_needs_recipients(sender: Identity) -> None:
    with pytest.raises(UnknownRecipient):
        seal(HEADER, BODY, [], sender)


def test_header_hash_is_domain_separated() -> None:
    import hashlib

    assert header_hash(HEADER) != hashlib.sha256(HEADER).digest()
    assert header_hash(HEADER) == hashlib.sha256(b"orcon/v1/header\x00" + HEADER).digest()


_POOL = {s: [Identity.generate(f"AG-{i}", suites=(s,), now=NOW) for i in range(6)]
         for s in SUITES}
_SENDER = Identity.generate("SENDER", now=NOW)


@settings(max_examples=25, deadline=None)
@given(
    body=st.binary(max_size=4096),
    header=st.dictionaries(st.text(max_size=12), st.binary(max_size=64), max_size=8).map(
        msgspec.msgpack.encode),
    suite=st.sampled_from(SUITES),
    n=st.integers(min_value=1, max_value=6),
    which=st.integers(min_value=0, max_value=5),
)
def test_round_trip_property(body: bytes, header: bytes, suite: str, n: int, which: int) -> None:
    idents = _POOL[suite][:n]
    env = seal(header, body, [r for i in idents for r in i.recipients()], _SENDER)
    assert len(env.stanzas) == n
    reader = idents[which % n]
    delivery = decode_envelope(encode_envelope(for_recipient(env, reader.agency)))
    assert open_envelope(delivery, reader, _SENDER.signing_public, now=NOW) == body


# ---- key commitment ------------------------------------------------------------------


def test_header_commits_to_the_content_key(alice: Identity, sender: Identity) -> None:
    import hashlib

    env = seal(HEADER, BODY, alice.recipients(), sender, rand=fixed_rand())
    expected = hashlib.sha256(b"orcon/v1/key-commitment\x00" + b"K" * 32).digest()
    assert key_commitment(b"K" * 32) == expected
    assert read_key_commitment(env.header) == expected
    # The sender's fields are kept as they were; the commitment is one more entry.
    assert msgspec.msgpack.decode(env.header) == {**msgspec.msgpack.decode(HEADER),
                                                  "key_commitment": expected}


def test_committed_header_equals_the_typed_encoding() -> None:
    import schemas
    from schemas import examples

    header = examples.example_header(examples.mekong_route_report())
    committed = commit_header(schemas.encode(header), b"K" * 32)
    typed = schemas.encode(replace(header, key_commitment=key_commitment(b"K" * 32)))
    assert committed == typed
    assert schemas.decode_header(committed).key_commitment == key_commitment(b"K" * 32)
    # Re-sealing a committed header replaces the commitment, never repeats the key.
    again = commit_header(committed, b"L" * 32)
    assert schemas.decode_header(again).key_commitment == key_commitment(b"L" * 32)


def test_seal_needs_a_header_map(alice: Identity, sender: Identity) -> None:
    for bad in (b"h", b"\x91\x01", b""):
        with pytest.raises(ValueError):
            seal(bad, BODY, alice.recipients(), sender)


def test_uncommitted_envelope_never_opens(alice: Identity, sender: Identity) -> None:
    """Hand-sealed without a commitment (or with a wrong-size one): refused at decoding
    with the field named, and by open_envelope with the opaque error."""
    import os

    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    from schemas.errors import SchemaError

    short = msgspec.msgpack.encode({**msgspec.msgpack.decode(HEADER),
                                    "key_commitment": b"c" * 31})
    for header in (HEADER, short):
        key, nonce = b"K" * 32, os.urandom(12)
        hh = header_hash(header)
        ct = nonce + ChaCha20Poly1305(key).encrypt(nonce, BODY, hh)
        env = Envelope(v=ENVELOPE_VERSION, header=header,
                       signature=sender.sign(signed_message(hh, ct)),
                       stanzas=[r.wrap(key, hh) for r in alice.recipients()], ciphertext=ct)
        with pytest.raises(SchemaError) as exc:
            decode_envelope(encode_envelope(env))
        assert "envelope.header.key_commitment" in str(exc.value)
        with pytest.raises(CryptoError):
            open_envelope(env, alice, sender.signing_public, now=NOW)


def test_repeated_commitment_never_opens(alice: Identity, sender: Identity) -> None:
    """Two `key_commitment` entries (first-wins and last-wins readers would check
    different keys): refused by open_envelope itself, not only by header decoding."""
    import os

    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    key, nonce = b"K" * 32, os.urandom(12)
    committed = commit_header(HEADER, key)
    assert committed[0] == 0x84  # fixmap: the three fields of HEADER and the commitment
    extra = msgspec.msgpack.encode("key_commitment") + msgspec.msgpack.encode(
        key_commitment(b"L" * 32))
    header = b"\x85" + extra + committed[1:]
    hh = header_hash(header)
    ct = nonce + ChaCha20Poly1305(key).encrypt(nonce, BODY, hh)
    env = Envelope(v=ENVELOPE_VERSION, header=header,
                   signature=sender.sign(signed_message(hh, ct)),
                   stanzas=[r.wrap(key, hh) for r in alice.recipients()], ciphertext=ct)
    with pytest.raises(CryptoError):
        open_envelope(env, alice, sender.signing_public, now=NOW)
