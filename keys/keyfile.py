"""Secret keys encrypted at rest.

File layout: MAGIC || msgpack [header, nonce, ciphertext] where header is the msgpack of
the KDF parameters, salt and the kind of key ("identity" or "root"). The key is
Argon2id(passphrase NFC-normalized, salt) and the secrets are sealed with
ChaCha20-Poly1305 under associated data MAGIC || header, so the KDF parameters and the
kind cannot be swapped (no downgrade to cheap parameters, no loading a root key as an
identity). A wrong passphrase and a tampered file are the same CryptoError.

Python cannot wipe memory: secrets live in immutable bytes until garbage-collected.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import stat
import unicodedata
from datetime import datetime
from pathlib import Path

import msgspec
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from keys.errors import CryptoError, KeyFileError, UnsupportedSuite
from keys.identity import Identity, KemKey, SigningKey

MAGIC = b"orcon-key\x00v1\x00"


class KdfParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    time_cost: int
    memory_kib: int
    parallelism: int


# RFC 9106's second recommended option (64 MiB, 3 passes): about 0.2 s to unlock.
DEFAULT_KDF = KdfParams(time_cost=3, memory_kib=64 * 1024, parallelism=4)
# For tests and development stacks only: offers no protection against guessing.
FAST_KDF = KdfParams(time_cost=1, memory_kib=8, parallelism=1)
_MAX_KDF = KdfParams(time_cost=16, memory_kib=1024 * 1024, parallelism=16)  # refuse a DoS file


class _Header(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: str
    kdf: str
    params: KdfParams
    salt: bytes


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True, array_like=True):
    header: bytes
    nonce: bytes
    ciphertext: bytes


class _Secret(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    alg: str
    secret: bytes
    created_at: datetime
    not_after: datetime | None = None


class _IdentitySecrets(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    agency: str
    signing: list[_Secret]
    kem: list[_Secret]


def _derive(passphrase: str, salt: bytes, p: KdfParams) -> bytes:
    if not passphrase:
        raise KeyFileError("empty passphrase")
    secret = unicodedata.normalize("NFC", passphrase).encode()
    return hash_secret_raw(
        secret, salt, p.time_cost, p.memory_kib, p.parallelism, 32, Type.ID
    )


def seal_file(path: Path | str, kind: str, plaintext: bytes, passphrase: str, *,
              fast: bool = False) -> None:
    """Encrypt and write atomically: a temporary file created 0600 then renamed, so a
    crash never leaves a half-written key nor, even briefly, a readable one."""
    params = FAST_KDF if fast else DEFAULT_KDF
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    header = msgspec.msgpack.encode(_Header(kind, "argon2id", params, salt))
    key = _derive(passphrase, salt, params)
    ct = ChaCha20Poly1305(key).encrypt(nonce, plaintext, MAGIC + header)
    atomic_write(Path(path), MAGIC + msgspec.msgpack.encode(_File(header, nonce, ct)))


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # exactly, whatever the umask
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_private(path: Path | str) -> bytes:
    """Read a file that must be private to its owner (checked on the open descriptor)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot open: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{path}: not a regular file")
        if st.st_mode & 0o077:
            raise KeyFileError(
                f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets others read or write the "
                "key; run chmod 600"
            )
        return f.read()


def peek_kind(path: Path | str) -> str:
    """The kind of key in a file ("identity" or "root"), without the passphrase."""
    return _parse(read_private(path), path)[0].kind


def _parse(data: bytes, path: Path | str) -> tuple[_Header, _File]:
    if not data.startswith(MAGIC):
        raise KeyFileError(f"{path}: not an orcon key file")
    try:
        outer = msgspec.msgpack.decode(data[len(MAGIC):], type=_File)
        header = msgspec.msgpack.decode(outer.header, type=_Header)
    except msgspec.DecodeError:
        raise KeyFileError(f"{path}: malformed key file") from None
    p = header.params
    if header.kdf != "argon2id" or len(header.salt) < 16 or len(outer.nonce) != 12:
        raise KeyFileError(f"{path}: unsupported key file parameters")
    if not (
        1 <= p.time_cost <= _MAX_KDF.time_cost
        and 1 <= p.parallelism <= _MAX_KDF.parallelism
        and 8 * p.parallelism <= p.memory_kib <= _MAX_KDF.memory_kib
    ):
        raise KeyFileError(f"{path}: KDF parameters out of range")
    return header, outer


def open_file(path: Path | str, kind: str, passphrase: str) -> bytes:
    header, outer = _parse(read_private(path), path)
    if header.kind != kind:
        raise KeyFileError(f"{path}: holds a {header.kind} key, not an {kind} key")
    key = _derive(passphrase, header.salt, header.params)
    try:
        return ChaCha20Poly1305(key).decrypt(outer.nonce, outer.ciphertext, MAGIC + outer.header)
    except InvalidTag:
        raise CryptoError() from None


def save_identity(identity: Identity, path: Path | str, passphrase: str, *,
                  fast: bool = False) -> None:
    """`fast=True` uses FAST_KDF: tests and throwaway development stacks only."""
    record = _IdentitySecrets(
        agency=identity.agency,
        signing=[_Secret("ed25519", k.secret, k.created_at, k.not_after)
                 for k in identity.signing_keys],
        kem=[_Secret(k.suite, k.secret, k.created_at, k.not_after) for k in identity.kem_keys],
    )
    seal_file(path, "identity", msgspec.msgpack.encode(record), passphrase, fast=fast)


def load_identity(path: Path | str, passphrase: str) -> Identity:
    plaintext = open_file(path, "identity", passphrase)
    try:
        r = msgspec.msgpack.decode(plaintext, type=_IdentitySecrets)
        return Identity(
            r.agency,
            [SigningKey.from_secret(s.secret, s.created_at, s.not_after) for s in r.signing],
            [KemKey.from_secret(s.alg, s.secret, s.created_at, s.not_after) for s in r.kem],
        )
    except (msgspec.DecodeError, ValueError, UnsupportedSuite) as exc:
        raise KeyFileError(f"{path}: unreadable identity ({type(exc).__name__})") from None


def passphrase_from_env_or_prompt(
    env_var: str = "ORCON_PASSPHRASE", *, confirm: bool = False
) -> str:
    """The passphrase from `env_var` if set (for services), else a hidden prompt."""
    value = os.environ.get(env_var)
    if value:
        return value
    value = getpass.getpass("Passphrase: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != value:
        raise KeyFileError("the passphrases do not match")
    if not value:
        raise KeyFileError("empty passphrase")
    return value
