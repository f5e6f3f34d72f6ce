"""`orcon audit verify` and `orcon audit report`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from typer.testing import CliRunner

from broker.audit.events import AuditEvent
from broker.audit.heads import SignedTreeHead
from broker.audit.log import AuditLog
from clients.cli.audit import app

Builder = Callable[..., tuple[AuditLog, list[SignedTreeHead]]]
Maker = Callable[..., Path]
runner = CliRunner()


def _pem(key: Ed25519PrivateKey, path: Path) -> Path:
    path.write_bytes(key.public_key().public_bytes(Encoding.PEM,
                                                   PublicFormat.SubjectPublicKeyInfo))
    return path


def test_verify_ok_and_tampered(events: list[AuditEvent], build: Builder,
                                make_bundle: Maker, tmp_path: Path,
                                log_key: Ed25519PrivateKey,
                                other_key: Ed25519PrivateKey) -> None:
    log, heads = build(events)
    good = make_bundle(log.entries(), heads)
    res = runner.invoke(app, ["verify", str(good)])
    assert res.exit_code == 0, res.output
    assert "OK valid:" in res.output and f"{log.size} entries" in res.output
    res = runner.invoke(app, ["verify", str(good), "--log-key",
                              str(_pem(log_key, tmp_path / "pinned.pem"))])
    assert res.exit_code == 0, res.output

    entries = log.entries()
    del entries[33]
    res = runner.invoke(app, ["verify", str(make_bundle(entries, heads))])
    assert res.exit_code == 1
    assert "first bad entry: 33" in res.output and "deleted (entry 33)" in res.output

    res = runner.invoke(app, ["verify", str(good), "--log-key",
                              str(_pem(other_key, tmp_path / "wrong.pem"))])
    assert res.exit_code == 1 and "key-mismatch" in res.output

    (good / "entries.bin").write_bytes(b"junk")
    res = runner.invoke(app, ["verify", str(good)])
    assert res.exit_code == 2 and "bad magic" in res.output


def test_report_writes_html(events: list[AuditEvent], build: Builder, make_bundle: Maker,
                            tmp_path: Path) -> None:
    log, heads = build(events)
    out = tmp_path / "audit.html"
    res = runner.invoke(app, ["report", str(make_bundle(log.entries(), heads)), "--html",
                              str(out), "--now", "2025-06-01T00:00:00+00:00"])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "Log verified" in html
    assert "As of 2025-06-01T00:00:00+00:00" in html
    res = runner.invoke(app, ["report", str(make_bundle(log.entries(), heads)), "--html",
                              str(out), "--now", "2025-06-01"])
    assert res.exit_code != 0 and "time zone" in res.output
