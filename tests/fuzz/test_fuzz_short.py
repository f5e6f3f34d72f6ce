"""Runs each atheris target in a subprocess: briefly in CI, long with ORCON_FUZZ_LONG=1
(`make fuzz`). A target fails when anything but the module's typed error escapes a
decoder (atheris then exits non-zero and writes the input to crash-*).

CI: `-runs=ORCON_FUZZ_RUNS` (default 100,000) or 10 s per target, whichever comes first.
Long: `-max_total_time=ORCON_FUZZ_SECONDS` (default 600) per target.
Seeds are valid documents (a sealed envelope, headers and bodies of every kind in
msgpack and JSON, the sample federation in TOML and JSON), so mutations start deep.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

import schemas
from keys.directory import Directory, FederationRoot
from keys.envelope import seal
from keys.identity import Identity
from schemas import examples

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
LONG = os.environ.get("ORCON_FUZZ_LONG", "") not in ("", "0")
RUNS = int(os.environ.get("ORCON_FUZZ_RUNS", "100000"))
SECONDS = int(os.environ.get("ORCON_FUZZ_SECONDS", "600"))


def _seed_envelopes(d: Path) -> None:
    now = datetime.now(UTC)
    sender, rcpt = Identity.generate("TH-AHTD", now=now), Identity.generate("KH-AHTJP", now=now)
    root = FederationRoot.generate(now)
    directory = Directory(root.public_bytes)
    for ident in (sender, rcpt):
        directory.add(root.sign_entry(ident.directory_entry(
            country="TH", roles=["liaison"], clearance="SECRET", now=now)))
    for i, (name, make) in enumerate(examples.EXAMPLES.items()):
        b = make()
        header = msgspec.structs.replace(
            examples.example_header(b, sender="TH-AHTD", recipients=("KH-AHTJP",)),
            sender_key=sender.signing_key_id)
        env = seal(schemas.encode(header), schemas.encode(b),
                   directory.recipients_for("KH-AHTJP", now), sender)
        (d / f"env-{i}-{name}").write_bytes(schemas.encode_envelope(env))


def _seed_headers(d: Path) -> None:
    for i, (name, make) in enumerate(examples.EXAMPLES.items()):
        b = make()
        header = examples.example_header(b)
        (d / f"header-{i}-{name}.mp").write_bytes(schemas.encode(header))
        (d / f"header-{i}-{name}.json").write_bytes(schemas.encode_json(header))
        (d / f"body-{i}-{name}.mp").write_bytes(schemas.encode(b))
        (d / f"body-{i}-{name}.json").write_bytes(schemas.encode_json(b))


def _seed_federations(d: Path) -> None:
    sample = REPO / "deploy" / "federation.toml"
    (d / "sample.toml").write_bytes(sample.read_bytes())
    from policies.federation import load_federation

    doc = msgspec.to_builtins(load_federation(sample))
    (d / "sample.json").write_text(json.dumps(doc, default=str))


# Open bugs this suite found, by the exact text of their traceback. While one is open
# its target stops at the first crash; any *other* crash still fails the test.
# Found by these fuzzers and fixed: the federation loader let UnicodeDecodeError escape
# for a file that is not UTF-8 (regression test below).

TARGETS = {
    "fuzz_envelope.py": _seed_envelopes,
    "fuzz_header.py": _seed_headers,
    "fuzz_federation.py": _seed_federations,
}


@pytest.mark.timeout(SECONDS + 300 if LONG else 120)
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target_raises_only_typed_errors(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    TARGETS[target](corpus)
    limits = ([f"-max_total_time={SECONDS}"] if LONG
              else [f"-runs={RUNS}", "-max_total_time=10"])
    cmd = [sys.executable, str(HERE / target), *limits, "-max_len=8192",
           f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", str(corpus)]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=(SECONDS + 120) if LONG else 90)
    out = proc.stdout + proc.stderr
    crashes = sorted(p.name for p in tmp_path.glob("crash-*"))
    assert proc.returncode == 0 and not crashes, (
        f"{target} found an untyped error (inputs: {crashes}):\n" + out[-4000:])
    execs = [line for line in out.splitlines() if "stat::number_of_executed_units" in line]
    assert execs, out[-2000:]
    print(f"\n{target}: {execs[-1].split(':')[-1].strip()} executions")


def test_non_utf8_federation_file_is_a_typed_error(tmp_path: Path) -> None:
    from policies.federation import FederationError, load_federation

    bad = tmp_path / "federation.toml"
    bad.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(FederationError):
        load_federation(bad)
