"""One `orcon dev` per data directory: DIR/orcon-dev.lock holds the pid of the stack
that owns DIR. The lock is an exclusive `flock` on that file, which the kernel releases
when the process dies however it dies, so a lock file left by a killed stack (stale)
never blocks the next one; the pid in it only names the owner in the refusal."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = "orcon-dev.lock"


class DataDirInUse(Exception):
    def __init__(self, data_dir: Path, pid: str) -> None:
        super().__init__(
            f"{data_dir} is in use by another orcon dev (pid {pid or 'unknown'}); stop it "
            f"(kill {pid or 'PID'}) or choose another --data-dir")
        self.pid = pid


@contextlib.contextmanager
def hold(data_dir: Path) -> Iterator[Path]:
    """Own DATA_DIR for the duration of the block, or raise DataDirInUse."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirInUse(data_dir, os.pread(fd, 32, 0).decode(errors="replace").strip()) \
                from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield path
        finally:
            # Unlink while still holding the lock, so no one sees our pid after we left.
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    finally:
        os.close(fd)
