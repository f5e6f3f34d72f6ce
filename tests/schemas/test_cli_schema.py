from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from clients.cli.schema import app

FIXTURES = Path(__file__).parent / "fixtures"
runner = CliRunner()


def test_validate_accepts_a_fixture() -> None:
    result = runner.invoke(app, ["validate", str(FIXTURES / "mekong_route_report.json")])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_validate_prints_every_error_and_exits_1(tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "vessel_by_sea.json").read_text(encoding="utf-8"))
    doc["body"]["vessel"]["flag"] = None
    doc["header"]["topics"] = {"route_countries": ["ZZ"]}
    del doc["body"]["grounds"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 1
    assert "header.topics.route_countries[0]" in result.output
    assert "body.grounds" in result.output


def test_validate_body_alone_and_header_alone(tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "mla_request.json").read_text(encoding="utf-8"))
    for part in ("header", "body"):
        f = tmp_path / f"{part}.json"
        f.write_text(json.dumps(doc[part]), encoding="utf-8")
        assert runner.invoke(app, ["validate", str(f)]).exit_code == 0


def test_validate_unreadable_file(tmp_path: Path) -> None:
    assert runner.invoke(app, ["validate", str(tmp_path / "missing.json")]).exit_code == 2


def test_export(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mla_request.json").is_file()
