"""The SDK checks a body's content rules before sealing (issue 16): a nationality `ZZ`
used to be sealed, delivered and only rejected by the recipient, the sender never told.
Every error is reported at once. Real nats-server and broker (the `stack` fixture)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

import schemas
from schemas import Category, Level, examples
from schemas.entities import Place
from tests.support.cli import Orcon, body_file


def _bad_alert() -> schemas.Body:
    alert = examples.arrest_alert()
    person = msgspec.structs.replace(alert.persons[0], nationalities=["ZZ"],
                                     last_known_location=Place("QQ", "Nowhere"))
    return msgspec.structs.replace(alert, persons=[person])


async def test_sdk_refuses_an_invalid_body_before_sealing_with_every_error(
        agency: Any) -> None:
    th = await agency("TH-AHTD")
    kh = await agency("KH-AHTJP")
    with pytest.raises(schemas.SchemaError) as caught:
        await th.send(_bad_alert(), category=Category.OTHER, level=Level.RESTRICTED,
                      to=["KH-AHTJP"])
    paths = {e.path for e in caught.value.errors}
    assert "body.persons[0].nationalities[0]" in paths, caught.value.errors
    assert "body.persons[0].last_known_location.country" in paths, caught.value.errors
    got = await kh.inbox(timeout=1.0)
    assert not got.messages and not got.rejected  # nothing was sealed or delivered


async def test_cli_send_reports_every_body_error_and_exits_2(
        orcon: Orcon, tmp_path: Path) -> None:
    body = body_file(tmp_path, _bad_alert())
    res = await orcon("send", "--as", "TH-AHTD", "--body", body, "--to", "KH-AHTJP")
    assert res.exit_code == 2, res.output
    assert "nationalities[0]" in res.output and "last_known_location.country" in res.output
    assert "nothing was sealed" in res.output
    assert "Traceback" not in res.output
    as_json = await orcon("send", "--as", "TH-AHTD", "--body", body, "--to", "KH-AHTJP",
                          "--json")
    assert as_json.exit_code == 2 and as_json.stdout == ""
    doc = json.loads(as_json.stderr)
    assert doc["exit"] == 2
    assert {e["path"] for e in doc["errors"]} >= {
        "body.persons[0].nationalities[0]", "body.persons[0].last_known_location.country"}


async def test_cli_send_reports_every_structural_error_of_the_file(
        orcon: Orcon, tmp_path: Path) -> None:
    raw = msgspec.json.decode(msgspec.json.encode(examples.arrest_alert()))
    raw["type"] = "not_a_type"
    raw["persons"][0]["roles"] = ["not_a_role"]
    path = tmp_path / "bad.json"
    path.write_bytes(msgspec.json.encode(raw))
    res = await orcon("send", "--as", "TH-AHTD", "--body", str(path), "--to", "KH-AHTJP")
    assert res.exit_code == 2, res.output
    assert "body.type" in res.output and "body.persons[0].roles[0]" in res.output, res.output
