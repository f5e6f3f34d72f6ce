"""`orcon policy explain | check | whatif`."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from typer.testing import CliRunner

from clients.cli.policy import app
from policies.loading import DEFAULT_POLICY_DIR
from schemas import Category, Header, Level, Restrictions

SAMPLE = str(Path(__file__).resolve().parents[2] / "deploy" / "federation.toml")
NOW = "2025-06-01T12:00:00+00:00"
runner = CliRunner()


def _write_header(path: Path, **restrictions: object) -> Path:
    h = Header(v="1.0", id="01JD0000000000000000000000", kind="intel_report",
               sender="TH-AHTD", sender_key="ed25519:AAAAAAAAAAAA",
               created_at=datetime(2025, 6, 1, tzinfo=UTC), category=Category.ROUTES,
               level=Level.CONFIDENTIAL, restrictions=Restrictions(**restrictions),  # type: ignore[arg-type]
               audience=["COMMIT"])
    path.write_bytes(msgspec.json.encode(h))
    return path


def test_explain(tmp_path: Path) -> None:
    hdr = _write_header(tmp_path / "h.json", exclude=["KH"])
    r = runner.invoke(app, ["explain", "--federation", SAMPLE, "--header", str(hdr),
                            "-r", "KH-AHTJP", "-r", "VN-MPS", "-r", "LA-MPS", "--now", NOW])
    assert r.exit_code == 0, r.output
    assert "KH-AHTJP: refused: KH-AHTJP is excluded by the sender (exclude = KH)" in r.output
    assert "VN-MPS: permitted under COMMIT-MOU-2004" in r.output
    assert "LA-MPS: refused: clearance RESTRICTED of LA-MPS is below CONFIDENTIAL" in r.output


def test_explain_json(tmp_path: Path) -> None:
    hdr = _write_header(tmp_path / "h.json")
    r = runner.invoke(app, ["explain", "-f", SAMPLE, "--header", str(hdr), "-r", "CN-MPS",
                            "--now", NOW, "--json"])
    (d,) = json.loads(r.output)
    assert d["allowed"] is True and d["rule"] == "basis.COMMIT-MOU-2004"


def test_explain_bad_header(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"v": "1.0"}')
    r = runner.invoke(app, ["explain", "-f", SAMPLE, "--header", str(bad), "-r", "X-1"])
    assert r.exit_code == 2 and "not a valid header" in r.output


def test_check_ok_and_error(tmp_path: Path) -> None:
    r = runner.invoke(app, ["check", "--federation", SAMPLE])
    assert r.exit_code == 0 and "11 agencies, 3 groups, 3 agreements" in r.output
    broken = tmp_path / "f.toml"
    broken.write_text(Path(SAMPLE).read_text().replace('country = "KH"', 'country = "QQ"'))
    r = runner.invoke(app, ["check", "--federation", str(broken)])
    assert r.exit_code == 2
    assert "agencies[0] (KH-AHTJP).country" in r.output


def test_whatif(tmp_path: Path) -> None:
    new = tmp_path / "cedar"
    shutil.copytree(DEFAULT_POLICY_DIR, new)
    (new / "operator.cedar").write_text(
        '@id("operator.no-cn")\nforbid (principal, action, resource)\n'
        'when { principal == Orcon::Agency::"CN-MPS" };\n')
    hdrs = tmp_path / "headers"
    hdrs.mkdir()
    _write_header(hdrs / "a.json")
    r = runner.invoke(app, ["whatif", str(new), "--federation", SAMPLE, "--headers", str(hdrs),
                            "--now", NOW])
    assert r.exit_code == 0, r.output
    assert "a.json CN-MPS: now refused: refused by policy operator.no-cn" in r.output
    assert "1 change(s) across 1 header(s)" in r.output
