"""The systemd units of deploy/systemd/ start commands that exist, with options those
commands accept: a renamed option would otherwise only fail on a production host."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from broker.hosting.node import SERVICE_ROLES
from clients.cli.main import app

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


def exec_start(unit: Path) -> list[str]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(unit.read_text())
    return shlex.split(parser["Service"]["ExecStart"])


@pytest.mark.parametrize("unit", sorted(UNITS.glob("orcon-*.service")), ids=lambda p: p.name)
def test_orcon_units_use_existing_commands_and_options(unit: Path) -> None:
    argv = exec_start(unit)
    assert argv[0].endswith("/orcon")
    command = argv[1]
    help_text = CliRunner().invoke(app, [command, "--help"], terminal_width=200).output
    assert "Usage" in help_text, (unit.name, command)
    for token in argv[2:]:
        if token.startswith("--"):
            assert token in help_text, (unit.name, token)
    if command == "service":
        assert argv[argv.index("--role") + 1] in SERVICE_ROLES


def test_every_service_role_has_a_unit_and_nats_server_has_one() -> None:
    roles = set()
    for unit in UNITS.glob("orcon-*.service"):
        argv = exec_start(unit)
        if argv[1] == "service":
            roles.add(argv[argv.index("--role") + 1])
    assert roles == set(SERVICE_ROLES)
    nats = exec_start(UNITS / "nats-server@.service")
    assert nats[0].endswith("/nats-server") and nats[1] == "-c"
