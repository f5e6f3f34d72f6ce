"""The architecture is checked, not described: every import-linter contract of
pyproject.toml holds (layers point down, the SDK is not the service, the audit log and
the vocabulary are pure), and no installed package contains the benchmarks."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_import_contract_is_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"]
    assert f"Contracts: {len(contracts)} kept, 0 broken." in run.stdout


def test_no_installed_package_contains_benchmark_code() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = setuptools["packages"]["find"]["include"]
    assert not [p for p in include if p.startswith("bench")], include
    shipped = [path.relative_to(REPO).as_posix() for pattern in include
               for path in REPO.glob(pattern.rstrip("*") + "/**/*.py")]
    assert shipped, include
    benchmarks = [p for p in shipped
                  if Path(p).stem.startswith(("bench", "perf", "profil", "sample"))]
    assert benchmarks == []
