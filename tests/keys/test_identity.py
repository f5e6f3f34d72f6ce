"""Identities: key ids, rotation, unwrap errors, and no secrets in reprs."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from cryptography.exceptions import InvalidSignature

from keys.envelope import header_hash, open_envelope, seal
from keys.errors import DirectoryError, KeyExpired, UnknownRecipient, UnsupportedSuite
from keys.identity import MLKEM768X25519, X25519, Identity, Recipient, key_id
from schemas.envelope import Stanza
from tests.support.keys import EMPTY_HEADER, NOW, SUITES

KEY_ID = re.compile(r"^[a-z0-9]+:[A-Za-z0-9_-]{8,64}$")  # schemas.header.KeyId


def test_key_id_format() -> None:
    # SHA-256 of 32 zero bytes = 66687aad f862bd77 6c8fc18b 8e9f8e20 ...
    assert key_id("x25519", b"\x00" * 32) == "x25519:Zmh6rfhivXdsj8GLjp-OIA"
    ident = Identity.generate("IT-SCO", suites=SUITES, now=NOW)
    for kid in [ident.signing_key_id, *(k.key_id for k in ident.kem_keys)]:
        assert KEY_ID.match(kid), kid
    assert ident.signing_key_id.startswith("ed25519:")
    assert {k.key_id.split(":")[0] for k in ident.kem_keys} == {X25519, MLKEM768X25519}


def test_key_id_known_value() -> None:
    import base64
    import hashlib

    pub = bytes(range(32))
    expect = base64.urlsafe_b64encode(hashlib.sha256(pub).digest()).decode().rstrip("=")[:22]
    assert key_id("ed25519", pub) == "ed25519:" + expect


def test_generate_with_rand_is_deterministic() -> None:
    def rand_from(seed: int) -> Callable[[int], bytes]:
        import random

        r = random.Random(seed)
        return lambda n: r.randbytes(n)

    a = Identity.generate("IT-SCO", suites=SUITES, now=NOW, rand=rand_from(1))
    b = Identity.generate("IT-SCO", suites=SUITES, now=NOW, rand=rand_from(1))
    c = Identity.generate("IT-SCO", suites=SUITES, now=NOW)
    assert a.signing_key_id == b.signing_key_id != c.signing_key_id
    assert [k.key_id for k in a.kem_keys] == [k.key_id for k in b.kem_keys]


def test_repr_never_shows_key_bytes() -> None:
    ident = Identity.generate("IT-SCO", suites=SUITES, now=NOW)
    texts = [repr(ident), str(ident), *map(repr, ident.kem_keys), *map(repr, ident.signing_keys),
             *map(repr, ident.recipients())]
    secrets = [k.secret for k in ident.kem_keys] + [k.secret for k in ident.signing_keys]
    publics = [k.public for k in ident.kem_keys]
    for text in texts:
        for blob in secrets + publics:
            for form in (blob.hex(), repr(blob)[2:-1], blob[:8].hex()):
                assert form not in text
    assert "IT-SCO" in repr(ident)


def test_sign_verifies_with_public() -> None:
    ident = Identity.generate("IT-SCO", now=NOW)
    signature = ident.sign(b"data")
    ident.signing_public.verify(signature, b"data")
    with pytest.raises(InvalidSignature):
        ident.signing_public.verify(signature, b"datA")


def test_rotation_overlap() -> None:
    sender = Identity.generate("LY-NCB", now=NOW)
    ident = Identity.generate("IT-SCO", suites=SUITES, now=NOW)
    old = seal(EMPTY_HEADER, b"old", ident.recipients(), sender)
    t = NOW + timedelta(days=30)
    ident.rotate(t, timedelta(days=7))
    assert len(ident.kem_keys) == 4
    new_recipients = ident.recipients()
    assert len(new_recipients) == 2
    assert {r.key_id for r in new_recipients}.isdisjoint(k.key_id for k in old.stanzas)
    new = seal(EMPTY_HEADER, b"new", new_recipients, sender)
    pub = sender.signing_public
    during = t + timedelta(days=6, hours=23)
    assert open_envelope(old, ident, pub, now=during) == b"old"
    assert open_envelope(new, ident, pub, now=during) == b"new"
    after = t + timedelta(days=7)
    with pytest.raises(KeyExpired):
        open_envelope(old, ident, pub, now=after)
    assert open_envelope(new, ident, pub, now=after) == b"new"
    ident.prune(after)
    assert len(ident.kem_keys) == 2
    with pytest.raises(UnknownRecipient):
        open_envelope(old, ident, pub, now=after)


def test_rotation_of_signing_key_and_suite_change() -> None:
    ident = Identity.generate("IT-SCO", now=NOW)
    first = ident.signing_key_id
    ident.rotate(NOW, timedelta(days=1), [MLKEM768X25519], new_signing_key=True)
    assert ident.signing_key_id != first
    assert [r.suite for r in ident.recipients()] == [MLKEM768X25519]
    entry = ident.directory_entry(country="IT", roles=[], clearance="SECRET", now=NOW)
    assert [k.not_after for k in entry.sign_keys] == [NOW + timedelta(days=1), None]
    with pytest.raises(ValueError):
        ident.rotate(NOW, timedelta(days=-1))
    with pytest.raises(UnsupportedSuite):
        ident.rotate(NOW, timedelta(days=1), ["rsa"])


def test_unwrap_errors() -> None:
    ident = Identity.generate("IT-SCO", now=NOW)
    hh = header_hash(b"h")
    stanza = ident.recipients()[0].wrap(b"k" * 32, hh)
    assert ident.unwrap(stanza, hh) == b"k" * 32
    with pytest.raises(UnsupportedSuite):
        ident.unwrap(Stanza("IT-SCO", stanza.key_id, "rsa", stanza.enc), hh)
    with pytest.raises(UnknownRecipient):
        ident.unwrap(Stanza("IT-SCO", "x25519:AAAAAAAAAAAAAAAAAAAAAA", "x25519", stanza.enc), hh)
    with pytest.raises(UnknownRecipient):
        ident.unwrap(Stanza("GR-HP", stanza.key_id, "x25519", stanza.enc), hh)


def test_recipient_validates_its_key() -> None:
    r = Identity.generate("IT-SCO", now=NOW).recipients()[0]
    with pytest.raises(UnsupportedSuite):
        Recipient(r.agency, r.key_id, "rsa", r.public)
    with pytest.raises(DirectoryError):
        Recipient(r.agency, r.key_id, r.suite, r.public[:-1])
    with pytest.raises(DirectoryError):
        Recipient(r.agency, r.key_id, r.suite, bytes(32))


def test_naive_datetime_refused() -> None:
    with pytest.raises(ValueError):
        Identity.generate("IT-SCO", now=NOW.replace(tzinfo=None))
