"""Fault tests: real nats-server, real `orcon broker` processes, real failures."""

from __future__ import annotations

import sys
from pathlib import Path

# orcon_harness.py sits beside the tests; --import-mode=importlib does not add this folder.
sys.path.insert(0, str(Path(__file__).parent))
