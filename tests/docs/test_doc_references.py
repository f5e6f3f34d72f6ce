"""The README's Guarantees, the threat model and the other docs name the tests that prove
each promise. A renamed or deleted test would leave a promise with no proof, so every
`tests/...py` and `tests/...py::name` they cite must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# `tests/x.py::a`, `::b` (a continuation names the last file again), `tests/dir/`.
CITE = re.compile(r"`(tests/[\w/.-]+?\.py|tests/[\w/-]+/)?((?:::[\w\[\].-]+)?)`")


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}


def _citations(doc: Path) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    last: str | None = None  # a bare `::name` continues the file cited last
    for line in doc.read_text(encoding="utf-8").splitlines():
        for m in CITE.finditer(line):
            path, name = m.group(1), m.group(2)
            if path:
                last = path
            if last is None:
                continue
            test = name[2:].split("[")[0] if name else None
            if path or test:
                out.append((last, test))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_cited_test_exists(doc: Path) -> None:
    missing = []
    for path, test in _citations(doc):
        target = REPO / path
        if not target.exists():
            missing.append(path)
        elif test is not None and target.suffix == ".py" and test not in _functions(target):
            missing.append(f"{path}::{test}")
    assert missing == [], f"{doc.name} cites tests that do not exist: {missing}"


def test_the_scan_finds_citations() -> None:
    """The pattern must keep matching the docs' style, or the check above is empty."""
    found = _citations(REPO / "docs" / "threat-model.md")
    assert len(found) > 30
    assert ("tests/security/test_key_commitment.py", None) in found
