"""The fetched-log bundle an auditor verifies offline (`orcon audit fetch DIR` writes it).

Layout of DIR — plain files an auditor can inspect with standard tools:

    entries.bin   magic b"ORCNLOG1", then per entry: u32 big-endian length ‖ entry
                  bytes (each entry a msgpack LogRecord, see events.py), in log order
    heads.jsonl   one signed tree head per line, as fetched (any order):
                  {"size", "root" (hex), "timestamp" (ISO 8601), "key_id",
                   "signature" (hex)}
    log_key.pub   the log's Ed25519 public key, PEM (SubjectPublicKeyInfo), so
                  `openssl pkey -pubin -in log_key.pub -text` works

The bundle's key is only what the fetcher was told; an auditor should pin the key
(`orcon audit verify --log-key`).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from broker.audit.heads import SignedTreeHead, raw_public_key

ENTRIES_FILE = "entries.bin"
HEADS_FILE = "heads.jsonl"
KEY_FILE = "log_key.pub"
MAGIC = b"ORCNLOG1"
MAX_ENTRY = 1 << 24  # an audit record is metadata; anything this large is corruption


class BundleError(Exception):
    """The bundle's files are missing or not in the documented format."""


@dataclass(frozen=True, slots=True)
class Bundle:
    entries: list[bytes]
    heads: list[SignedTreeHead]
    log_public_key: bytes


def write_bundle(
    directory: str | os.PathLike[str],
    entries: Iterable[bytes],
    heads: list[SignedTreeHead],
    log_public_key: bytes,
) -> None:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    with (d / ENTRIES_FILE).open("wb") as f:
        f.write(MAGIC)
        for e in entries:
            f.write(struct.pack(">I", len(e)))
            f.write(e)
    with (d / HEADS_FILE).open("w", encoding="utf-8") as f:
        for h in heads:
            f.write(json.dumps(h.to_json(), sort_keys=True) + "\n")
    pem = Ed25519PublicKey.from_public_bytes(log_public_key).public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    (d / KEY_FILE).write_bytes(pem)


def iter_entries(directory: str | os.PathLike[str]) -> Iterator[bytes]:
    """Stream entries without loading the whole file list into memory."""
    path = Path(directory) / ENTRIES_FILE
    try:
        f = path.open("rb")
    except OSError as exc:
        raise BundleError(f"{path}: {exc.strerror}") from None
    with f:
        if f.read(len(MAGIC)) != MAGIC:
            raise BundleError(f"{path}: not an orcon audit log (bad magic)")
        n = 0
        while True:
            hdr = f.read(4)
            if not hdr:
                return
            if len(hdr) != 4:
                raise BundleError(f"{path}: truncated length prefix after entry {n - 1}")
            (length,) = struct.unpack(">I", hdr)
            if length > MAX_ENTRY:
                raise BundleError(f"{path}: entry {n} claims {length} bytes")
            data = f.read(length)
            if len(data) != length:
                raise BundleError(f"{path}: entry {n} truncated")
            yield data
            n += 1


def read_heads(directory: str | os.PathLike[str]) -> list[SignedTreeHead]:
    path = Path(directory) / HEADS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BundleError(f"{path}: {exc.strerror}") from None
    heads = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            heads.append(SignedTreeHead.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"{path}:{lineno}: not a tree head ({exc})") from None
    return heads


def read_public_key(directory: str | os.PathLike[str]) -> bytes:
    path = Path(directory) / KEY_FILE
    try:
        key = load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise BundleError(f"{path}: {exc.strerror}") from None
    except ValueError:
        raise BundleError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{path}: the log key must be Ed25519")
    return raw_public_key(key)


def read_bundle(directory: str | os.PathLike[str]) -> Bundle:
    return Bundle(list(iter_entries(directory)), read_heads(directory), read_public_key(directory))
