"""Opening a parsed `Message`: the header's commitment and hash are taken from it, the
header bytes are not read again, and every check of a bare envelope still applies."""

from __future__ import annotations

import msgspec
import pytest

import schemas
import schemas.envelope
from keys.envelope import open_envelope, seal, unwrap_content_key
from keys.errors import CryptoError, UnknownRecipient
from keys.identity import Identity
from schemas.examples import example_header, information_request
from schemas.message import Message, parse_message
from tests.support.keys import NOW, flip

BODY = schemas.encode(information_request())


def _message(sender: Identity, *recipients: Identity) -> Message:
    header = msgspec.structs.replace(
        example_header(information_request(), sender=sender.agency,
                       recipients=tuple(r.agency for r in recipients)),
        sender_key=sender.signing_key_id, created_at=NOW)
    env = seal(schemas.encode(header), BODY, [r.recipients()[0] for r in recipients], sender)
    return parse_message(schemas.encode_envelope(env))


def test_a_parsed_message_opens_without_reading_its_header_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sender, alice = Identity.generate("TH-AHTD", now=NOW), Identity.generate("LA-MPS", now=NOW)
    msg = _message(sender, alice)

    def read_again(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("the parsed header was read again")

    monkeypatch.setattr("keys.envelope.read_key_commitment", read_again)
    monkeypatch.setattr("keys.envelope.header_hash", read_again)
    monkeypatch.setattr(schemas.envelope, "read_key_commitment", read_again)
    assert open_envelope(msg, alice, sender.signing_public, now=NOW) == BODY
    assert len(unwrap_content_key(msg, alice, sender.signing_public, now=NOW)) == 32


def test_a_parsed_message_gets_every_check_of_a_bare_envelope() -> None:
    sender, alice = Identity.generate("TH-AHTD", now=NOW), Identity.generate("LA-MPS", now=NOW)
    bob = Identity.generate("MM-ATIPD", now=NOW)
    msg = _message(sender, alice)
    with pytest.raises(CryptoError):  # another signer
        open_envelope(msg, alice, bob.signing_public, now=NOW)
    with pytest.raises(UnknownRecipient):  # not addressed to bob
        open_envelope(msg, bob, sender.signing_public, now=NOW)
    tampered = msgspec.structs.replace(msg, envelope=msgspec.structs.replace(
        msg.envelope, ciphertext=flip(msg.envelope.ciphertext, 100)))
    with pytest.raises(CryptoError):
        open_envelope(tampered, alice, sender.signing_public, now=NOW)


def test_a_message_whose_header_commits_to_another_key_does_not_open() -> None:
    """The commitment is the parsed header's: a Message whose header was swapped for one
    committing to another key opens nothing (the check happens before decryption)."""
    sender, alice = Identity.generate("TH-AHTD", now=NOW), Identity.generate("LA-MPS", now=NOW)
    msg = _message(sender, alice)
    for other in (b"\x00" * 32, None, b"short"):
        forged = msgspec.structs.replace(
            msg, header=msgspec.structs.replace(msg.header, key_commitment=other))
        with pytest.raises(CryptoError):
            open_envelope(forged, alice, sender.signing_public, now=NOW)


def test_a_header_hash_other_than_the_messages_is_refused() -> None:
    sender, alice = Identity.generate("TH-AHTD", now=NOW), Identity.generate("LA-MPS", now=NOW)
    msg = _message(sender, alice)
    with pytest.raises(ValueError):
        open_envelope(msg, alice, sender.signing_public, now=NOW, hh=b"\x00" * 32)
    assert open_envelope(msg, alice, sender.signing_public, now=NOW,
                         hh=msg.header_hash) == BODY
