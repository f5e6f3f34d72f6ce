"""Fixtures of the person-facing CLI tests (helpers in tests/support/cli.py)."""

from __future__ import annotations

import pytest

from broker.hosting.stack import DevStack
from tests.support.cli import Orcon, cli


@pytest.fixture
def orcon(stack: DevStack) -> Orcon:
    return cli(stack)
