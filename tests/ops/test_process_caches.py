"""A process-wide cache must not outlive what it depends on (a data directory, a key, a
federation). `schemas.code_rules.GOOD_REFS` (refs already accepted, so a rule tests one
set lookup before calling `ref_ok`) outlives every store and key of a process; it is safe
because it depends on nothing but the string: its one writer is `ref_ok`, which adds only
what it accepted, and `ref_ok` is the regex of `REF_PATTERN` exactly. These tests keep
that true: a second writer anywhere in the code, or a ref accepted that the pattern
refuses, fails them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from schemas import code_rules
from schemas.entities import REF_PATTERN

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "keys", "policies", "transport", "broker", "clients", "bench")
READS = {"issuperset", "issubset", "__contains__", "copy"}


def _uses(tree: ast.AST) -> list[tuple[str, int]]:
    """Every use of GOOD_REFS that is not a plain read: (what, line)."""
    out = []
    parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id == "GOOD_REFS"):
            continue
        parent = parents.get(node)
        if isinstance(parent, ast.Compare):  # `x in GOOD_REFS`, `x not in GOOD_REFS`
            continue
        if isinstance(parent, ast.Attribute) and parent.attr in READS:
            continue
        if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) \
                and parent.func.id == "len":
            continue
        if isinstance(parent, ast.alias | ast.ImportFrom):
            continue
        what = parent.attr if isinstance(parent, ast.Attribute) else type(parent).__name__
        out.append((what, node.lineno))
    return out


def test_ref_ok_is_the_one_writer_of_the_cache() -> None:
    writers = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            if "GOOD_REFS" not in text:
                continue
            for what, line in _uses(ast.parse(text)):
                writers.append((str(path.relative_to(ROOT)), what, line))
    # The definition (an annotated assignment) and ref_ok's add, nothing else.
    assert sorted(w[:2] for w in writers) == [("schemas/code_rules.py", "AnnAssign"),
                                              ("schemas/code_rules.py", "add")], writers
    add_line = next(line for _, what, line in writers if what == "add")
    ref_ok = next(n for n in ast.walk(ast.parse((ROOT / "schemas/code_rules.py").read_text()))
                  if isinstance(n, ast.FunctionDef) and n.name == "ref_ok")
    assert ref_ok.lineno <= add_line <= (ref_ok.end_lineno or 0)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
       | st.text(alphabet="AZaz09_- \n.", max_size=40))
def test_the_cache_holds_only_what_the_pattern_accepts(s: str) -> None:
    pattern = re.compile(REF_PATTERN.replace("$", r"\Z"))
    assert code_rules.ref_ok(s) == bool(pattern.match(s))
    # Whatever any test before this one put in the cache, through ref_ok.
    assert all(pattern.match(r) for r in code_rules.GOOD_REFS)
    assert len(code_rules.GOOD_REFS) <= code_rules._GOOD_REFS_MAX
