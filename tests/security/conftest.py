"""Security tests: real nats-server and brokers, attacks from agencies and brokers."""

from __future__ import annotations

import sys
from pathlib import Path

# The shared helpers live in tests/faults/orcon_harness.py.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "faults"))
# The attack tests' own helpers (attack_helpers.py) live next to them.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# The `stack` fixture of tests/conftest.py (a DevStack with one in-process broker) is
# used as is; attacks that need broker processes use orcon_harness.BrokerProcess.
