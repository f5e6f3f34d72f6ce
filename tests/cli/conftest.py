"""Fixtures of the person-facing CLI tests (helpers in cliutil.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cliutil import Orcon, cli

from broker.hosting.stack import DevStack


@pytest.fixture
def orcon(stack: DevStack) -> Orcon:
    return cli(stack)
