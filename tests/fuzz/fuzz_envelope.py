"""atheris target: the envelope decoder, then the header inside it.

Run: `python tests/fuzz/fuzz_envelope.py [libFuzzer flags] [corpus dirs]`.
Only `schemas.SchemaError` may escape the decoders; anything else is a crash.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["schemas"]):
    import schemas


def TestOneInput(data: bytes) -> None:
    try:
        env = schemas.decode_envelope(data)
    except schemas.SchemaError:
        return
    try:
        schemas.encode_envelope(env)  # what decodes must re-encode (the broker does)
        schemas.decode_header(env.header)
    except schemas.SchemaError:
        return


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
