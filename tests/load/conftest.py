"""Load tests: real nats-server and broker processes at scale."""

from __future__ import annotations

import sys
from pathlib import Path

# The shared helpers live in tests/faults/orcon_harness.py.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "faults"))

