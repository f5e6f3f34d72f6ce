"""The embedded nats-server: clear one-sentence errors and no orphan processes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from broker.hosting import natsserver
from broker.hosting.natsserver import EmbeddedNats, NatsServerError

CONFIG = '{{"listen": "127.0.0.1:{port}", "jetstream": {{"store_dir": "{store}"}}}}'


def test_starts_and_stops_without_orphan(tmp_path: Path) -> None:
    srv = EmbeddedNats(tmp_path)
    srv.start(CONFIG.format(port=srv.port, store=tmp_path / "js"))
    pid = srv.pid
    assert pid is not None and srv.running
    with socket.create_connection((srv.host, srv.port), timeout=2) as s:
        assert s.recv(4) == b"INFO"
    srv.stop()
    assert not srv.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_port_taken_gives_one_clear_sentence(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        srv = EmbeddedNats(tmp_path, port=port)
        with pytest.raises(NatsServerError, match=f"port {port} on 127.0.0.1 is already in use"):
            srv.start(CONFIG.format(port=port, store=tmp_path / "js"))
        assert srv.pid is None


def test_missing_binary_gives_one_clear_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(natsserver.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(natsserver.sysconfig, "get_path", lambda _: str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    srv = EmbeddedNats(tmp_path)
    with pytest.raises(NatsServerError, match="nats-server binary was not found"):
        srv.start(CONFIG.format(port=srv.port, store=tmp_path / "js"))
    assert srv.pid is None


def test_bad_config_reports_the_servers_reason(tmp_path: Path) -> None:
    srv = EmbeddedNats(tmp_path)
    with pytest.raises(NatsServerError, match="exited with code"):
        srv.start("listen: 127.0.0.1:" + str(srv.port) + "\nthis is { not a config")
    assert not srv.running
