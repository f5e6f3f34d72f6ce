"""The architecture is checked, not described: every import-linter contract of
pyproject.toml holds (layers point down, the SDK is not the service, the audit log and
the vocabulary are pure), no installed package contains the benchmarks, and
docs/architecture.md names every module, every contract and every subject."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

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


# ---- docs/architecture.md matches the code ------------------------------------------

ARCHITECTURE = REPO / "docs" / "architecture.md"


def _importlinter() -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"][
        "importlinter"]
    return config


def _modules() -> list[str]:
    """Every module of the packages the contracts cover (`__init__` files aside)."""
    out = []
    for package in _importlinter()["root_packages"]:
        for path in sorted((REPO / package).rglob("*.py")):
            if path.name != "__init__.py":
                out.append(".".join(path.relative_to(REPO).with_suffix("").parts))
    return out


def _subject_names() -> list[str]:
    """Every name `transport/subjects.py` defines: its string constants as they are, and
    what each public function makes, its argument shown as `<argument>`
    (`submit(agency)` -> `orcon.submit.<agency>`)."""
    from transport import subjects

    tree = ast.parse((REPO / "transport" / "subjects.py").read_text())
    names = []
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            names.append(node.value.value)
        elif isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            [arg] = [a.arg for a in node.args.args]
            sentinel = f"PARAM{arg.upper()}"
            made = getattr(subjects, node.name)(sentinel)
            if made != sentinel:  # agency_of reads a subject, it makes none
                names.append(made.replace(sentinel, f"<{arg}>"))
    return names


def test_the_scans_find_modules_and_subjects() -> None:
    """The checks below must not pass by finding nothing."""
    modules, names = _modules(), _subject_names()
    assert len(modules) > 100 and "broker.hosting.node" in modules
    assert "orcon.submit.<agency>" in names and "brokers-<agency>" in names
    assert "_INBOX.<user>" in names and "orcon.audit" in names


def test_every_module_is_in_the_architecture_doc() -> None:
    doc = ARCHITECTURE.read_text()
    missing = [m for m in _modules() if f"`{m}`" not in doc]
    assert missing == [], f"docs/architecture.md lacks a line for {missing}"


def test_every_subject_is_in_the_architecture_doc() -> None:
    doc = ARCHITECTURE.read_text()
    missing = [n for n in _subject_names() if f"`{n}`" not in doc]
    assert missing == [], f"docs/architecture.md lacks the subjects {missing}"


def test_every_contract_is_in_the_architecture_doc() -> None:
    doc = ARCHITECTURE.read_text()
    contracts = _importlinter()["contracts"]
    layers = [c for c in contracts if c["type"] == "layers" and "containers" not in c]
    [top] = layers
    assert " > ".join(f"`{p}`" for p in top["layers"]) in doc
    for c in contracts:
        for module in c.get("source_modules", []):
            assert f"`{module}`" in doc or f"`{module.rsplit('.', 1)[-1]}`" in doc, module


def test_docs_stand_alone() -> None:
    """The docs cite only files in the repository: no design brief outside it."""
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    citing = [d.name for d in docs if re.search(r"DESIGN\.md|\.\./shared", d.read_text())]
    assert citing == []


def test_the_readme_layout_table_lists_every_folder() -> None:
    """README's layout table names every top-level folder of the repository, and only
    folders that exist (the subfolders it names included)."""
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Layout"):]
    table = table[:table.index("\n\n", table.index("| folder |"))]
    named = set(re.findall(r"^\| `([\w-]+)/` \|", table, re.MULTILINE))
    # The repository's folders, not whatever a run left in the checkout (.venv, build).
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             timeout=60)
    assert tracked.returncode == 0, tracked.stderr
    folders = {f.split("/")[0] for f in tracked.stdout.splitlines()
               if "/" in f and not f.startswith(".")}
    assert named == folders
    for sub in re.findall(r"`([\w-]+/[\w/-]+)/`", table):
        assert (REPO / sub).is_dir(), sub


def test_one_way_to_dial_nats() -> None:
    """Only transport.connection.connect_nats calls nats-py's connect, so no program can
    dial without its own inbox or without the TLS of connection.json."""
    dialling = []
    for package in _importlinter()["root_packages"]:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "connect"
                        and isinstance(node.func.value, ast.Name | ast.Call)
                        and ast.unparse(node.func.value) in {"nats", "NATS()"}):
                    dialling.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert [d.split(":")[0] for d in dialling] == ["transport/connection.py"], dialling
