"""atheris target: the federation loader, from a TOML file and from a mapping.

Run: `python tests/fuzz/fuzz_federation.py [libFuzzer flags] [corpus dirs]`.
Only `policies.federation.FederationError` may escape; anything else is a crash.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["policies.federation", "schemas"]):
    from policies.federation import FederationError, federation_from_dict, load_federation

_FD, _PATH = tempfile.mkstemp(suffix=".toml", prefix="orcon-fuzz-")
os.close(_FD)


@atexit.register
def _cleanup() -> None:
    with contextlib.suppress(OSError):
        os.unlink(_PATH)


def TestOneInput(data: bytes) -> None:
    with open(_PATH, "wb") as f:
        f.write(data)
    with contextlib.suppress(FederationError):
        load_federation(_PATH)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return
    if isinstance(doc, dict):
        with contextlib.suppress(FederationError):
            federation_from_dict(doc)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
