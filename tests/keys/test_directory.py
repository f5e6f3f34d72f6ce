"""The signed key directory: forgery, rollback, expiry, revocation, selection."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from keys.directory import (
    Directory,
    FederationRoot,
    Revocation,
    RevocationList,
    SignedEntry,
)
from keys.errors import (
    CryptoError,
    DirectoryError,
    KeyExpired,
    KeyRevoked,
    UnknownRecipient,
)
from keys.identity import MLKEM768X25519, X25519, Identity
from keys.records import encoder
from tests.support.keys import NOW, make_federation

DAY = timedelta(days=1)


def test_entries_verify_and_resolve() -> None:
    fed = make_federation("IT-SCO", "GR-HP")
    d = fed.directory
    assert d.agencies() == ["GR-HP", "IT-SCO"]
    ident = fed.idents["IT-SCO"]
    [r] = d.recipients_for("IT-SCO", NOW)
    assert (r.agency, r.key_id, r.public) == ("IT-SCO", ident.kem_keys[0].key_id,
                                              ident.kem_keys[0].public)
    pub = d.signing_key("IT-SCO", ident.signing_key_id, NOW)
    pub.verify(ident.sign(b"m"), b"m")
    assert d.entry("IT-SCO").clearance == "SECRET"
    with pytest.raises(UnknownRecipient):
        d.entry("FR-OCRIEST")
    with pytest.raises(UnknownRecipient):
        d.recipients_for("FR-OCRIEST", NOW)
    with pytest.raises(UnknownRecipient):
        d.signing_key("IT-SCO", fed.idents["GR-HP"].signing_key_id, NOW)


def test_forged_entry_refused() -> None:
    fed = make_federation("IT-SCO")
    mallory = FederationRoot.generate(NOW)
    evil = Identity.generate("GR-HP", now=NOW)
    entry = evil.directory_entry(country="GR", roles=[], clearance="SECRET", now=NOW)
    with pytest.raises(CryptoError):
        fed.directory.add(mallory.sign_entry(entry))
    # a genuine signature over other bytes
    good = fed.root.sign_entry(entry)
    tampered = msgspec.msgpack.decode(good.entry)
    tampered["clearance"] = "UNCLASSIFIED"
    with pytest.raises(CryptoError):
        fed.directory.add(SignedEntry(encoder.encode(tampered), good.signature))
    # a revocation-list signature is not an entry signature (domain separation)
    rl = fed.root.sign_revocations(RevocationList(serial=1, issued_at=NOW))
    with pytest.raises(CryptoError):
        fed.directory.add(SignedEntry(rl.revocations, rl.signature))
    assert fed.directory.agencies() == ["IT-SCO"]


def test_malformed_entries_refused() -> None:
    fed = make_federation()
    ident = Identity.generate("IT-SCO", now=NOW)
    good = ident.directory_entry(country="IT", roles=[], clearance="SECRET", now=NOW)
    for bad in (
        msgspec.structs.replace(good, clearance="TOP-SECRET"),
        msgspec.structs.replace(good, agency="it.sco"),
        msgspec.structs.replace(good, kem_keys=[msgspec.structs.replace(
            good.kem_keys[0], public=bytes(32))]),
        msgspec.structs.replace(good, sign_keys=[msgspec.structs.replace(
            good.sign_keys[0], alg="x25519",
            key_id=good.sign_keys[0].key_id.replace("ed25519", "x25519"))]),
    ):
        with pytest.raises(DirectoryError):
            fed.directory.add(fed.root.sign_entry(bad))
    with pytest.raises(DirectoryError):
        fed.directory.add(b"\x00garbage")


def test_rollback_refused() -> None:
    fed = make_federation()
    ident = Identity.generate("IT-SCO", now=NOW)
    e1 = fed.root.sign_entry(ident.directory_entry(country="IT", roles=[], clearance="SECRET",
                                                   now=NOW, serial=1))
    fed.directory.add(e1)
    ident.rotate(NOW + DAY, DAY)
    e2 = fed.root.sign_entry(ident.directory_entry(country="IT", roles=[], clearance="SECRET",
                                                   now=NOW + DAY, serial=2))
    fed.directory.add(e2)
    fed.directory.add(e2)  # the same entry again is idempotent
    with pytest.raises(DirectoryError, match="rollback"):
        fed.directory.add(e1)
    same_serial = fed.root.sign_entry(ident.directory_entry(
        country="FR", roles=[], clearance="SECRET", now=NOW, serial=2))
    with pytest.raises(DirectoryError):
        fed.directory.add(same_serial)
    assert fed.directory.entry("IT-SCO").serial == 2
    assert fed.directory.add(encoder.encode(e2)).serial == 2  # the wire form


def test_recipients_prefer_newest_and_post_quantum() -> None:
    fed = make_federation()
    ident = Identity.generate("IT-SCO", suites=(X25519, MLKEM768X25519), now=NOW)
    fed.publish(ident, serial=1)
    [r] = fed.directory.recipients_for("IT-SCO", NOW)
    assert r.suite == MLKEM768X25519
    ident.rotate(NOW + DAY, 7 * DAY)
    fed.publish(ident, when=NOW + DAY, serial=2)
    [r2] = fed.directory.recipients_for("IT-SCO", NOW + 2 * DAY)
    assert r2.suite == MLKEM768X25519 and r2.key_id != r.key_id
    assert r2.key_id in {k.key_id for k in ident.kem_keys if k.not_after is None}


def test_expired_keys() -> None:
    fed = make_federation()
    ident = Identity.generate("IT-SCO", now=NOW)
    ident.rotate(NOW, DAY)
    ident.prune(NOW)  # keeps the old key: its overlap has not ended
    entry = ident.directory_entry(country="IT", roles=[], clearance="SECRET", now=NOW)
    only_old = msgspec.structs.replace(entry, kem_keys=[k for k in entry.kem_keys if k.not_after])
    fed.directory.add(fed.root.sign_entry(only_old))
    assert fed.directory.recipients_for("IT-SCO", NOW + DAY - timedelta(seconds=1))
    with pytest.raises(KeyExpired):
        fed.directory.recipients_for("IT-SCO", NOW + DAY)
    with pytest.raises(KeyExpired):  # not yet valid
        fed.directory.recipients_for("IT-SCO", NOW - timedelta(seconds=1))


def test_signing_key_validity_window() -> None:
    fed = make_federation()
    ident = Identity.generate("IT-SCO", now=NOW)
    old = ident.signing_key_id
    ident.rotate(NOW + DAY, DAY, new_signing_key=True)
    fed.publish(ident, when=NOW + DAY)
    d = fed.directory
    assert d.signing_key("IT-SCO", old, NOW + DAY, created_at=NOW + DAY)
    with pytest.raises(KeyExpired):
        d.signing_key("IT-SCO", old, NOW + 2 * DAY)
    with pytest.raises(KeyExpired):
        d.signing_key("IT-SCO", old, NOW + 3 * DAY, created_at=NOW + 2 * DAY)
    with pytest.raises(KeyExpired):  # created before the key existed
        d.signing_key("IT-SCO", ident.signing_key_id, NOW + DAY, created_at=NOW)


def test_revocation() -> None:
    fed = make_federation("IT-SCO", "GR-HP")
    d = fed.directory
    ident = fed.idents["IT-SCO"]
    kem_id = ident.kem_keys[0].key_id
    t = NOW + DAY
    rl = RevocationList(serial=1, issued_at=t, revocations=[
        Revocation(kem_id, "IT-SCO", t, "key_compromise"),
        Revocation(ident.signing_key_id, "IT-SCO", t, "key_compromise"),
    ])
    d.set_revocations(fed.root.sign_revocations(rl))
    assert d.recipients_for("IT-SCO", t - timedelta(seconds=1))
    with pytest.raises(KeyRevoked):
        d.recipients_for("IT-SCO", t)
    d.recipients_for("GR-HP", t)  # others unaffected
    # messages created before the revocation still verify; at/after it they do not
    assert d.signing_key("IT-SCO", ident.signing_key_id, t + DAY, created_at=t - DAY)
    with pytest.raises(KeyRevoked):
        d.signing_key("IT-SCO", ident.signing_key_id, t + DAY, created_at=t)
    with pytest.raises(KeyRevoked):
        d.signing_key("IT-SCO", ident.signing_key_id, t)
    assert d.revocation(kem_id) is not None


def test_revocation_list_forgery_and_rollback() -> None:
    fed = make_federation("IT-SCO")
    d = fed.directory
    kid = fed.idents["IT-SCO"].kem_keys[0].key_id
    rl1 = RevocationList(serial=1, issued_at=NOW, revocations=[
        Revocation(kid, "IT-SCO", NOW, "superseded")])
    rl2 = RevocationList(serial=2, issued_at=NOW)
    with pytest.raises(CryptoError):
        d.set_revocations(FederationRoot.generate(NOW).sign_revocations(rl1))
    s1, s2 = fed.root.sign_revocations(rl1), fed.root.sign_revocations(rl2)
    d.set_revocations(s2)
    with pytest.raises(DirectoryError, match="rollback"):
        d.set_revocations(s1)  # a stale list is refused, whatever it says
    d.set_revocations(s2)
    assert d.revocations.serial == 2


def test_dump_load_round_trip_and_tamper() -> None:
    fed = make_federation("IT-SCO", "GR-HP")
    kid = fed.idents["GR-HP"].kem_keys[0].key_id
    fed.directory.set_revocations(fed.root.sign_revocations(RevocationList(
        serial=1, issued_at=NOW, revocations=[Revocation(kid, "GR-HP", NOW, "superseded")])))
    data = fed.directory.dump()
    d2 = Directory.load(data, fed.root.public_bytes)
    assert d2.agencies() == ["GR-HP", "IT-SCO"]
    assert d2.dump() == data
    with pytest.raises(KeyRevoked):
        d2.recipients_for("GR-HP", NOW)
    with pytest.raises(CryptoError):
        Directory.load(data, FederationRoot.generate(NOW).public_bytes)
    i = data.index(b"SECRET")
    with pytest.raises(CryptoError):
        Directory.load(data[:i] + b"SECRES" + data[i + 6:], fed.root.public_bytes)
    with pytest.raises(DirectoryError):
        Directory.load(data[:-5], fed.root.public_bytes)
    with pytest.raises(DirectoryError):
        Directory(b"short")


def test_successor_refuses_every_way_back() -> None:
    from keys.errors import RollbackError

    fed = make_federation("IT-SCO", "GR-HP")
    old = Directory.load(fed.directory.dump(), fed.root.public_bytes)
    rl = RevocationList(serial=1, issued_at=NOW, revocations=[
        Revocation(fed.idents["IT-SCO"].signing_key_id, "IT-SCO", NOW, "compromised")])
    fed.directory.set_revocations(fed.root.sign_revocations(rl))
    later = NOW + timedelta(days=1)
    fed.idents["GR-HP"].rotate(later, timedelta(days=7))
    fed.publish(fed.idents["GR-HP"], when=later)
    new = Directory.load(fed.directory.dump(), fed.root.public_bytes)

    assert old.successor(new) is new
    assert new.successor(Directory.load(new.dump(), fed.root.public_bytes)) is not None
    with pytest.raises(RollbackError, match="GR-HP: entry serial"):
        new.successor(old)
    # Today's entries but the revocation list left out: the revocation would be undone.
    unrevoked = Directory(fed.root.public_bytes)
    for agency in new.agencies():
        unrevoked.add(new._signed[agency])
    with pytest.raises(RollbackError, match="revocation list serial none"):
        new.successor(unrevoked)
    # Revocations kept but GR-HP's entry from before its rotation: still a rollback.
    mixed = Directory(fed.root.public_bytes)
    mixed.add(new._signed["IT-SCO"])
    mixed.add(old._signed["GR-HP"])
    assert new._signed_revocations is not None
    mixed.set_revocations(new._signed_revocations)
    with pytest.raises(RollbackError, match="GR-HP: entry serial"):
        new.successor(mixed)
    # An entry dropped altogether.
    dropped = Directory(fed.root.public_bytes)
    dropped.add(new._signed["IT-SCO"])
    dropped.set_revocations(new._signed_revocations)
    with pytest.raises(RollbackError, match=r"GR-HP: entry .* missing"):
        new.successor(dropped)
    # Another root's directory is never a successor.
    other = make_federation("IT-SCO")
    with pytest.raises(DirectoryError, match="another root"):
        new.successor(other.directory)


def test_registry_signature_and_serial() -> None:
    import msgspec

    from keys.directory import next_serial, verify_registry
    from keys.records import RegistryRecord, SignedRegistry

    root = FederationRoot.generate(NOW)
    record = RegistryRecord(serial=next_serial(0, NOW), issued_at=NOW, federation=b"name='x'\n")
    signed = root.sign_registry(record)
    assert verify_registry(msgspec.msgpack.encode(signed), root.public_bytes) == record
    assert record.serial == int(NOW.timestamp() * 1000)
    assert next_serial(record.serial, NOW) == record.serial + 1  # clock did not move
    altered = msgspec.msgpack.encode(msgspec.structs.replace(record, federation=b"name='y'\n"))
    with pytest.raises(CryptoError):
        verify_registry(SignedRegistry(altered, signed.signature), root.public_bytes)
    with pytest.raises(CryptoError):
        verify_registry(signed, FederationRoot.generate(NOW).public_bytes)
    # An entry signature never verifies as a registry (domain separation).
    entry_sig = root.sign_entry(Identity.generate("IT-SCO", now=NOW).directory_entry(
        country="IT", roles=["ncb"], clearance="SECRET", now=NOW))
    with pytest.raises(CryptoError):
        verify_registry(SignedRegistry(entry_sig.entry, entry_sig.signature), root.public_bytes)
    with pytest.raises(DirectoryError, match="malformed SignedRegistry"):
        verify_registry(b"name = 'unsigned toml'", root.public_bytes)
