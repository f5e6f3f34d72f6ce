"""Helpers of the keys tests: a fixed time, both KEM suites, bit flips and a small
root-signed federation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from keys.directory import Directory, FederationRoot
from keys.identity import MLKEM768X25519, X25519, Identity

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SUITES = (X25519, MLKEM768X25519)
EMPTY_HEADER = b"\x80"  # an empty msgpack map: seal adds the key commitment to a header map


def flip(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


@dataclass
class Federation:
    root: FederationRoot
    directory: Directory
    idents: dict[str, Identity]

    def publish(self, ident: Identity, *, when: datetime = NOW, serial: int | None = None,
                clearance: str = "SECRET") -> None:
        entry = ident.directory_entry(
            country="IT", roles=["ncb"], clearance=clearance, now=when, serial=serial
        )
        self.directory.add(self.root.sign_entry(entry))
        self.idents[ident.agency] = ident


def make_federation(*agencies: str, suites: tuple[str, ...] = (X25519,)) -> Federation:
    root = FederationRoot.generate(NOW)
    fed = Federation(root, Directory(root.public_bytes), {})
    for a in agencies:
        fed.publish(Identity.generate(a, suites=suites, now=NOW))
    return fed


def sample_bits(nbytes: int, k: int = 96, always: tuple[int, ...] = ()) -> list[int]:
    """Bit positions to flip: the first and last bits of every field, the bits in
    `always`, and a fixed pseudo-random sample (so the suite stays fast and repeatable)."""
    import random

    total = nbytes * 8
    rng = random.Random(nbytes)
    picks = {0, 7, total - 8, total - 1, *always}
    picks.update(rng.sample(range(total), min(k, total)))
    return sorted(b for b in picks if 0 <= b < total)
