"""Regenerate the TEST-ONLY envelope vectors (see README.md):

    .venv/bin/python -m tests.vectors.generate

Every secret here is derived from a public seed: these keys protect nothing and must never
be used outside tests. HPKE's ephemeral key cannot be injected through cryptography's API,
so each run produces different stanza bytes (and so a different envelope); everything else
is reproducible from the seed, and tests check that it is.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from keys.envelope import header_hash, key_commitment, seal, signed_message
from keys.identity import MLKEM768X25519, X25519, Identity, stanza_info
from schemas.envelope import encode_envelope

HERE = Path(__file__).resolve().parent
WARNING = "TEST-ONLY: keys derived from a public seed. Never use them for real messages."
CREATED = datetime(2025, 1, 1, tzinfo=UTC)
HPKE_IDS = {  # RFC 9180 / IANA code points: (kem, kdf, aead)
    X25519: (0x0020, 0x0001, 0x0003),
    MLKEM768X25519: (0x647A, 0x0001, 0x0003),
}


class Drbg:
    """Deterministic bytes: the SHAKE256 stream of "orcon test vector drbg\\0" || seed,
    handed out in order of the calls."""

    def __init__(self, seed: bytes) -> None:
        self._prefix = b"orcon test vector drbg\x00" + seed
        self._offset = 0

    def __call__(self, n: int) -> bytes:
        out = hashlib.shake_256(self._prefix).digest(self._offset + n)[self._offset :]
        self._offset += n
        return out


def seed_for(suite: str) -> bytes:
    return f"orcon-envelope-vector-{suite}".encode()


def fixtures(suite: str) -> tuple[Identity, Identity, Drbg]:
    """Recipient, signer, and the DRBG positioned for `seal` (content key, then nonce)."""
    drbg = Drbg(seed_for(suite))
    recipient = Identity.generate("TEST-RECIPIENT", suites=(suite,), now=CREATED, rand=drbg)
    signer = Identity.generate("TEST-SENDER", now=CREATED, rand=drbg)
    return recipient, signer, drbg


def header_bytes() -> bytes:
    """The sender's header map before sealing; `seal` appends `key_commitment`. Any map
    does for the envelope layer; a header-like one keeps the vector realistic."""
    return msgspec.msgpack.encode(
        {"v": "1.0", "id": "TESTVECTOR0000000000000000", "kind": "intel_report",
         "sender": "TEST-SENDER", "recipients": ["TEST-RECIPIENT"], "level": "RESTRICTED"}
    )


BODY = b"TEST VECTOR: route report, not real intelligence. " * 3


def build(suite: str) -> dict[str, Any]:
    recipient, signer, drbg = fixtures(suite)
    content_key_pos = drbg._offset
    unsealed = header_bytes()
    env = seal(unsealed, BODY, recipient.recipients(), signer, rand=drbg)
    header = env.header
    replay = Drbg(seed_for(suite))
    replay(content_key_pos)
    content_key, nonce = replay(32), replay(12)
    hh = header_hash(header)
    kem = recipient.kem_keys[0]
    sig = signer.signing_keys[0]
    kem_id, kdf_id, aead_id = HPKE_IDS[suite]
    return {
        "WARNING": WARNING,
        "suite": suite,
        "hpke": {"mode": "base", "kem_id": kem_id, "kdf_id": kdf_id, "aead_id": aead_id},
        "seed": seed_for(suite).hex(),
        "created_at": CREATED.isoformat(),
        "recipient": {
            "agency": recipient.agency,
            "key_id": kem.key_id,
            "secret_key": kem.secret.hex(),
            "public_key": kem.public.hex(),
        },
        "signer": {
            "agency": signer.agency,
            "key_id": sig.key_id,
            "secret_key": sig.secret.hex(),
            "public_key": sig.public.hex(),
        },
        "header_unsealed": unsealed.hex(),
        "header": header.hex(),
        "body": BODY.hex(),
        "content_key": content_key.hex(),
        "key_commitment": key_commitment(content_key).hex(),
        "nonce": nonce.hex(),
        "header_hash": hh.hex(),
        "hpke_info": stanza_info(hh, recipient.agency, kem.key_id).hex(),
        "ciphertext": env.ciphertext.hex(),
        "signed_message": signed_message(hh, env.ciphertext).hex(),
        "signature": env.signature.hex(),
        "stanza_enc": env.stanzas[0].enc.hex(),
        "envelope": encode_envelope(env).hex(),
    }


def main() -> None:
    for suite in (X25519, MLKEM768X25519):
        path = HERE / f"envelope_{suite}.json"
        path.write_text(json.dumps(build(suite), indent=2) + "\n")
        print(f"wrote {path.relative_to(HERE.parents[1])}")


if __name__ == "__main__":
    main()
