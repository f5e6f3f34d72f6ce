"""atheris target: header and body decoders, msgpack and JSON.

Run: `python tests/fuzz/fuzz_header.py [libFuzzer flags] [corpus dirs]`.
Only `schemas.SchemaError` may escape; anything else is a crash.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports(include=["schemas"]):
    import schemas


def TestOneInput(data: bytes) -> None:
    header = None
    for decode in (schemas.decode_header, schemas.decode_header_json):
        with contextlib.suppress(schemas.SchemaError):
            header = decode(data)
    for decode_body in (schemas.decode_body, schemas.decode_body_json):
        with contextlib.suppress(schemas.SchemaError):
            decode_body(data)
        if header is not None:  # the header-aware checks (kind agreement, languages)
            with contextlib.suppress(schemas.SchemaError):
                decode_body(data, header)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
