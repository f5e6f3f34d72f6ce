"""Where the tests find the repository and the sample federation they run against."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE_FEDERATION = REPO / "deploy" / "federation.toml"
