"""`orcon keys ...` through typer's CliRunner."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clients.cli.keys import app
from keys.directory import Directory
from keys.errors import KeyRevoked
from keys.keyfile import load_identity
from tests.support.keys import NOW, make_federation

PASS = "cli test passphrase"
runner = CliRunner()


@pytest.fixture(autouse=True)
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCON_PASSPHRASE", PASS)


def test_generate_show_rotate(tmp_path: Path) -> None:
    key = tmp_path / "it.key"
    res = runner.invoke(app, ["generate", "--agency", "IT-SCO", "--out", str(key),
                              "--suite", "x25519", "--suite", "mlkem768x25519", "--fast-kdf"])
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ident = load_identity(key, PASS)
    assert sorted(k.suite for k in ident.kem_keys) == ["mlkem768x25519", "x25519"]
    assert ident.signing_key_id in res.output

    res = runner.invoke(app, ["generate", "--agency", "IT-SCO", "--out", str(key)])
    assert res.exit_code == 1 and "refusing to overwrite" in res.output

    res = runner.invoke(app, ["show", str(key)])
    assert res.exit_code == 0, res.output
    assert "IT-SCO" in res.output and "current" in res.output
    for k in ident.kem_keys:
        assert k.secret.hex() not in res.output and k.public.hex() not in res.output

    res = runner.invoke(app, ["rotate", "--key", str(key), "--overlap-days", "3", "--fast-kdf"])
    assert res.exit_code == 0, res.output
    rotated = load_identity(key, PASS)
    assert len(rotated.kem_keys) == 4 and "retiring" in res.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_wrong_passphrase_and_bad_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "it.key"
    assert runner.invoke(app, ["generate", "--agency", "IT-SCO", "--out", str(key),
                               "--fast-kdf"]).exit_code == 0
    monkeypatch.setenv("ORCON_PASSPHRASE", "wrong")
    res = runner.invoke(app, ["show", str(key)])
    assert res.exit_code == 1 and "wrong passphrase" in res.output
    res = runner.invoke(app, ["generate", "--agency", "GR-HP", "--out", str(tmp_path / "g"),
                              "--suite", "rsa"])
    assert res.exit_code != 0 and not (tmp_path / "g").exists()
    res = runner.invoke(app, ["generate", "--agency", "gr.hp", "--out", str(tmp_path / "g")])
    assert res.exit_code != 0 and not (tmp_path / "g").exists()
    key.chmod(0o644)
    monkeypatch.setenv("ORCON_PASSPHRASE", PASS)
    res = runner.invoke(app, ["show", str(key)])
    assert res.exit_code == 1 and "chmod 600" in res.output


def test_revoke(tmp_path: Path) -> None:
    fed = make_federation("IT-SCO", "GR-HP")
    root_key, dir_file = tmp_path / "root.key", tmp_path / "directory.bin"
    fed.root.save(root_key, PASS, fast=True)
    dir_file.write_bytes(fed.directory.dump())
    kid = fed.idents["IT-SCO"].kem_keys[0].key_id
    args = ["revoke", "--root", str(root_key), "--directory", str(dir_file),
            "--key-id", kid, "--reason", "key_compromise", "--at", NOW.isoformat()]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    d = Directory.load(dir_file.read_bytes(), fed.root.public_bytes)
    assert d.revocations.serial == 1
    with pytest.raises(KeyRevoked):
        d.recipients_for("IT-SCO", NOW)
    d.recipients_for("GR-HP", NOW)
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "already revoked" in res.output
    res = runner.invoke(app, [*args[:5], "--key-id", "x25519:AAAAAAAAAAAAAAAAAAAAAA",
                              "--reason", "x"])
    assert res.exit_code == 1 and "no agency publishes" in res.output

    res = runner.invoke(app, ["show", str(root_key)])
    assert res.exit_code == 0 and fed.root.public_bytes.hex() in res.output


def test_generate_root_prints_the_public_key_to_pin(tmp_path: Path) -> None:
    from keys.directory import FederationRoot

    out = tmp_path / "root.key"
    res = runner.invoke(app, ["generate-root", "--out", str(out), "--fast-kdf"])
    assert res.exit_code == 0, res.output
    root = FederationRoot.load(out, PASS)
    assert root.public_bytes.hex() in res.output and root.key_id in res.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    res = runner.invoke(app, ["generate-root", "--out", str(out)])
    assert res.exit_code == 1 and "refusing to overwrite" in res.output
