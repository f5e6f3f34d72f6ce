"""Key files: encrypted at rest, 0600, opaque on a wrong passphrase."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from keys import keyfile
from keys.directory import FederationRoot
from keys.envelope import open_envelope, seal
from keys.errors import CryptoError, KeyFileError
from keys.identity import Identity
from keys.keyfile import (
    MAGIC,
    load_identity,
    passphrase_from_env_or_prompt,
    peek_kind,
    save_identity,
)
from tests.support.keys import EMPTY_HEADER, NOW, SUITES

PASS = "correct horse battery staple"


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Identity, Path]:
    ident = Identity.generate("IT-SCO", suites=SUITES, now=NOW)
    path = tmp_path / "it-sco.key"
    save_identity(ident, path, PASS, fast=True)
    return ident, path


def test_round_trip(saved: tuple[Identity, Path]) -> None:
    ident, path = saved
    loaded = load_identity(path, PASS)
    assert loaded.agency == "IT-SCO"
    assert loaded.signing_key_id == ident.signing_key_id
    assert [(k.key_id, k.created_at, k.not_after) for k in loaded.kem_keys] == [
        (k.key_id, k.created_at, k.not_after) for k in ident.kem_keys]
    sender = Identity.generate("GR-HP", now=NOW)
    env = seal(EMPTY_HEADER, b"body", ident.recipients(), sender)
    assert open_envelope(env, loaded, sender.signing_public, now=NOW) == b"body"


def test_file_is_0600_and_encrypted(saved: tuple[Identity, Path]) -> None:
    ident, path = saved
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    for secret in [k.secret for k in ident.kem_keys] + [k.secret for k in ident.signing_keys]:
        assert secret[:8] not in data
    assert b"IT-SCO" not in data
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_0600_even_with_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        save_identity(Identity.generate("IT-SCO", now=NOW), tmp_path / "k", PASS, fast=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_group_or_world_access_refused(saved: tuple[Identity, Path], mode: int) -> None:
    _, path = saved
    path.chmod(mode)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_identity(path, PASS)
    path.chmod(0o400)
    assert load_identity(path, PASS).agency == "IT-SCO"


def test_wrong_passphrase_is_crypto_error(saved: tuple[Identity, Path]) -> None:
    _, path = saved
    with pytest.raises(CryptoError) as exc:
        load_identity(path, PASS + "!")
    assert PASS not in str(exc.value)
    with pytest.raises(KeyFileError):
        load_identity(path, "")


def test_tampered_file(saved: tuple[Identity, Path]) -> None:
    _, path = saved
    data = path.read_bytes()
    for i in (len(MAGIC) + 20, len(data) - 1, len(data) // 2):
        path.write_bytes(data[:i] + bytes([data[i] ^ 1]) + data[i + 1:])
        with pytest.raises((CryptoError, KeyFileError)):
            load_identity(path, PASS)
    path.write_bytes(b"not a key file")
    with pytest.raises(KeyFileError):
        load_identity(path, PASS)
    with pytest.raises(KeyFileError):
        load_identity(path.parent / "missing.key", PASS)


def test_kdf_parameters_are_authenticated(saved: tuple[Identity, Path]) -> None:
    # Downgrading the stored time cost must not yield a file that still opens.
    import msgspec

    _, path = saved
    data = path.read_bytes()
    outer = msgspec.msgpack.decode(data[len(MAGIC):])
    header = msgspec.msgpack.decode(outer[0])
    header["params"]["time_cost"] = 2
    outer[0] = msgspec.msgpack.encode(header)
    path.write_bytes(MAGIC + msgspec.msgpack.encode(outer))
    with pytest.raises(CryptoError):
        load_identity(path, PASS)


def test_root_key_file(tmp_path: Path, saved: tuple[Identity, Path]) -> None:
    root = FederationRoot.generate(NOW)
    path = tmp_path / "root.key"
    root.save(path, PASS, fast=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert peek_kind(path) == "root" and peek_kind(saved[1]) == "identity"
    assert FederationRoot.load(path, PASS).public_bytes == root.public_bytes
    with pytest.raises(CryptoError):
        FederationRoot.load(path, "wrong")
    with pytest.raises(KeyFileError):  # a root key is not an identity
        load_identity(path, PASS)
    with pytest.raises(KeyFileError):
        FederationRoot.load(saved[1], PASS)
    assert root.public_bytes.hex() not in repr(root)


def test_default_kdf_cost(tmp_path: Path) -> None:
    """Key files are stretched with RFC 9106's second recommended Argon2id option (64 MiB,
    3 passes; about 0.2 s to unlock, measured in the benchmark, not here). The parameters
    travel in the authenticated file header, so they are read back from the file."""
    ident = Identity.generate("IT-SCO", now=NOW)
    path = tmp_path / "k"
    save_identity(ident, path, PASS)
    header, _ = keyfile._parse(path.read_bytes(), path)
    assert header.kdf == "argon2id"
    assert header.params == keyfile.DEFAULT_KDF
    assert header.params.memory_kib >= 64 * 1024 and header.params.time_cost >= 3
    save_identity(ident, tmp_path / "fast", PASS, fast=True)
    fast, _ = keyfile._parse((tmp_path / "fast").read_bytes(), tmp_path / "fast")
    assert fast.params == keyfile.FAST_KDF


def test_passphrase_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCON_TEST_PASS", "from-env")
    assert passphrase_from_env_or_prompt("ORCON_TEST_PASS") == "from-env"
    monkeypatch.delenv("ORCON_TEST_PASS")
    answers = iter(["typed", "typed", "typed", "typed", "other"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert passphrase_from_env_or_prompt("ORCON_TEST_PASS") == "typed"
    assert passphrase_from_env_or_prompt("ORCON_TEST_PASS", confirm=True) == "typed"
    with pytest.raises(KeyFileError):
        passphrase_from_env_or_prompt("ORCON_TEST_PASS", confirm=True)
