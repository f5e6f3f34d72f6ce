"""The committed TEST-ONLY vectors in tests/vectors open, and everything deterministic in
them recomputes (see tests/vectors/README.md)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from msgspec.structs import replace

from keys.envelope import header_hash, open_envelope, seal, signed_message, verify
from keys.errors import CryptoError, KeysError
from keys.identity import Identity, KemKey, SigningKey, stanza_info
from schemas.envelope import decode_envelope, read_key_commitment
from schemas.errors import SchemaError
from tests.support.keys import flip
from tests.vectors import generate

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _generator() -> ModuleType:
    return generate


@pytest.fixture(scope="module", params=["x25519", "mlkem768x25519"])
def vector(request: pytest.FixtureRequest) -> dict[str, Any]:
    v: dict[str, Any] = json.loads((VECTORS / f"envelope_{request.param}.json").read_text())
    assert v["suite"] == request.param
    assert "TEST-ONLY" in v["WARNING"]
    return v


def _h(v: dict[str, Any], *path: str) -> bytes:
    node: Any = v
    for p in path:
        node = node[p]
    return bytes.fromhex(node)


def _identities(v: dict[str, Any]) -> tuple[Identity, Identity]:
    created = datetime.fromisoformat(v["created_at"])
    r, s = v["recipient"], v["signer"]
    recipient = Identity(
        r["agency"],
        [SigningKey.from_secret(bytes(32), created)],  # unused: a recipient only unwraps
        [KemKey.from_secret(v["suite"], bytes.fromhex(r["secret_key"]), created)],
    )
    signer = Identity(
        s["agency"],
        [SigningKey.from_secret(bytes.fromhex(s["secret_key"]), created)],
        [KemKey.from_secret("x25519", bytes(32), created)],  # unused: a signer only signs
    )
    return recipient, signer


def test_vector_opens(vector: dict[str, Any]) -> None:
    recipient, signer = _identities(vector)
    env = decode_envelope(_h(vector, "envelope"))
    assert recipient.kem_keys[0].key_id == vector["recipient"]["key_id"]
    assert recipient.kem_keys[0].public == _h(vector, "recipient", "public_key")
    assert signer.signing_key_id == vector["signer"]["key_id"]
    assert (env.header, env.signature, env.ciphertext) == (
        _h(vector, "header"), _h(vector, "signature"), _h(vector, "ciphertext"))
    assert env.stanzas[0].enc == _h(vector, "stanza_enc")
    assert header_hash(env.header) == _h(vector, "header_hash")
    assert signed_message(header_hash(env.header), env.ciphertext) == _h(vector, "signed_message")
    assert stanza_info(header_hash(env.header), recipient.agency,
                       env.stanzas[0].key_id) == _h(vector, "hpke_info")
    verify(env, signer.signing_public)
    assert recipient.unwrap(env.stanzas[0], header_hash(env.header)) == _h(vector, "content_key")
    assert read_key_commitment(env.header) == _h(vector, "key_commitment")
    assert open_envelope(env, recipient, signer.signing_public,
                         now=datetime.fromisoformat(vector["created_at"])) == _h(vector, "body")


def test_vector_recomputes_independently(vector: dict[str, Any]) -> None:
    """The construction from the README with bare primitives, not orcon's code."""
    hh = hashlib.sha256(b"orcon/v1/header\x00" + _h(vector, "header")).digest()
    assert hh == _h(vector, "header_hash")
    nonce, key = _h(vector, "nonce"), _h(vector, "content_key")
    commitment = hashlib.sha256(b"orcon/v1/key-commitment\x00" + key).digest()
    assert commitment == _h(vector, "key_commitment")
    unsealed = _h(vector, "header_unsealed")
    assert 0x80 <= unsealed[0] < 0x8F  # a fixmap: appending one entry bumps its length
    appended = bytes([unsealed[0] + 1]) + unsealed[1:] + b"\xaekey_commitment\xc4\x20"
    assert _h(vector, "header") == appended + commitment
    ct = nonce + ChaCha20Poly1305(key).encrypt(nonce, _h(vector, "body"), hh)
    assert ct == _h(vector, "ciphertext")
    msg = b"orcon/v1/signature\x00" + hh + hashlib.sha256(ct).digest()
    sig = Ed25519PrivateKey.from_private_bytes(_h(vector, "signer", "secret_key")).sign(msg)
    assert sig == _h(vector, "signature")


def test_vector_wire_bit_flips_never_open(vector: dict[str, Any]) -> None:
    """A flip anywhere in the encoded envelope (framing included) never yields a body."""
    recipient, signer = _identities(vector)
    data = _h(vector, "envelope")
    now = datetime.fromisoformat(vector["created_at"])
    for bit in range(0, len(data) * 8, 37):
        try:
            bad = decode_envelope(flip(data, bit))
        except SchemaError:
            continue
        with pytest.raises((CryptoError, KeysError)):
            open_envelope(bad, recipient, signer.signing_public, now=now)


def test_vector_other_key_refused(vector: dict[str, Any]) -> None:
    """A stanza that validly wraps another key for the same recipient and message (what
    a sender splitting recipients' views would hand out) is refused."""
    recipient, signer = _identities(vector)
    env = decode_envelope(_h(vector, "envelope"))
    hh = header_hash(env.header)
    [r] = recipient.recipients()
    other = replace(env, stanzas=[r.wrap(bytes(32), hh)])
    assert recipient.unwrap(other.stanzas[0], hh) == bytes(32)  # the HPKE layer accepts it
    with pytest.raises(CryptoError):
        open_envelope(other, recipient, signer.signing_public,
                      now=datetime.fromisoformat(vector["created_at"]))


def test_fixtures_rederive_from_seed(vector: dict[str, Any]) -> None:
    gen = _generator()
    assert bytes.fromhex(vector["seed"]) == gen.seed_for(vector["suite"])
    recipient, signer, drbg = gen.fixtures(vector["suite"])
    assert recipient.kem_keys[0].secret.hex() == vector["recipient"]["secret_key"]
    assert signer.signing_keys[0].secret.hex() == vector["signer"]["secret_key"]
    env = seal(gen.header_bytes(), gen.BODY, recipient.recipients(), signer, rand=drbg)
    assert env.header.hex() == vector["header"]
    assert env.ciphertext.hex() == vector["ciphertext"]  # content key and nonce from seed
    assert env.signature.hex() == vector["signature"]
