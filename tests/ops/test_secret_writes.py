"""A secret the hosting code writes is written whole or not at all: a crash (here, a
full disk) half-way through writing the cluster's route password used to leave half a
password, which the next start took as the password. One left truncated, or readable
by others, is refused by name, never used. Real files; the failure is injected into the
one write."""

from __future__ import annotations

import contextlib
import errno
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.hosting.cluster import _route_password
from keys.errors import KeyFileError


class _DiskFull(io.RawIOBase):
    """A file that takes half of what is written, then fails as a full disk does."""

    def __init__(self, f: Any) -> None:
        self.f = f

    def write(self, data: Any) -> int:
        self.f.write(bytes(data)[: len(data) // 2])
        self.f.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def fileno(self) -> int:
        return int(self.f.fileno())

    def __enter__(self) -> _DiskFull:
        return self

    def __exit__(self, *exc: object) -> None:
        self.f.close()


@contextlib.contextmanager
def _disk_full(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every file opened meanwhile takes half of what is written, then fails."""
    real = os.fdopen
    with monkeypatch.context() as m:
        m.setattr(os, "fdopen", lambda fd, *a, **k: _DiskFull(real(fd, *a, **k)))
        yield


def test_a_route_password_is_written_whole_or_not_at_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "creds" / "route.pw"
    with _disk_full(monkeypatch), pytest.raises(OSError):
        _route_password(path)
    assert not path.exists()
    assert [p.name for p in path.parent.iterdir()] == []  # no temporary file left
    password = _route_password(path)
    assert len(password) == 48 and _route_password(path) == password
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_truncated_or_readable_route_password_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "route.pw"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"3f9a0c")
    os.close(fd)
    with pytest.raises(KeyFileError, match=r"route\.pw"):
        _route_password(path)
    path.write_text("a" * 48)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        _route_password(path)


def test_a_tls_private_key_is_written_whole_or_not_at_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from broker.hosting import tls

    key = tmp_path / "tls" / "server.key"
    real = os.fdopen
    with monkeypatch.context() as m:
        m.setattr(os, "fdopen", lambda fd, *a, **k: _DiskFull(real(fd, *a, **k)))
        with pytest.raises(OSError):
            tls._write(key, b"-----BEGIN PRIVATE KEY-----\n" + b"k" * 200, 0o600)
    # Neither the key nor a fragment of it under another name.
    assert list(key.parent.iterdir()) == []
    tls._write(key, b"whole", 0o600)
    assert key.read_bytes() == b"whole" and key.stat().st_mode & 0o777 == 0o600


def test_an_nkey_seed_is_written_whole_or_not_at_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A truncated seed would not parse, and the service holding that name could never
    # connect again until someone found and deleted the file.
    from broker.hosting.provision import ensure_nkey

    creds = tmp_path / "creds"
    with _disk_full(monkeypatch), pytest.raises(OSError):
        ensure_nkey(creds, "orcon-broker")
    assert list(creds.iterdir()) == []  # neither the seed nor a temporary file
    path, public = ensure_nkey(creds, "orcon-broker")
    assert public.startswith("U") and ensure_nkey(creds, "orcon-broker") == (path, public)
    assert path.stat().st_mode & 0o777 == 0o600
