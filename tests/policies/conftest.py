"""Shared fixtures: the sample federation and a header factory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from policies.engine import PolicyEngine
from policies.federation import Federation, load_federation
from schemas import Category, Header, Level, Restrictions, new_message_id

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "deploy" / "federation.toml"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

HeaderFactory = Callable[..., Header]


@pytest.fixture(scope="session")
def sample() -> Federation:
    return load_federation(SAMPLE)


@pytest.fixture(scope="session")
def engine(sample: Federation) -> PolicyEngine:
    return PolicyEngine(sample)


@pytest.fixture
def make_header() -> HeaderFactory:
    def make(
        sender: str = "TH-AHTD",
        category: str = "a",
        level: str = "RESTRICTED",
        kind: Any = "intel_report",
        recipients: list[str] | None = None,
        audience: list[str] | None = None,
        **restrictions: Any,
    ) -> Header:
        return Header(
            v="1.0",
            id=new_message_id(NOW),
            kind=kind,
            sender=sender,
            sender_key="ed25519:AAAAAAAAAAAA",
            created_at=NOW,
            category=Category(category),
            level=Level(level),
            restrictions=Restrictions(**restrictions),
            recipients=sorted(recipients or []),
            audience=audience or [],
        )

    return make
