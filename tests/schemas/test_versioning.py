from __future__ import annotations

import msgspec
import pytest

from schemas.codec import check_version, decode_header, encode
from schemas.errors import SchemaError
from schemas.examples import example_header, mekong_route_report
from schemas.header import SCHEMA_VERSION


def test_current_and_older_minor_versions_are_read() -> None:
    check_version(SCHEMA_VERSION)
    check_version("1.7")  # a newer minor only adds optional fields
    check_version("0.9")


def test_newer_major_is_refused() -> None:
    with pytest.raises(SchemaError) as exc:
        check_version("2.0")
    assert exc.value.errors[0].path == "header.v"
    assert exc.value.errors[0].rule == "version"


def test_malformed_version_is_refused() -> None:
    with pytest.raises(SchemaError, match=r"MAJOR\.MINOR"):
        check_version("one")


def test_decode_header_checks_version() -> None:
    h = msgspec.structs.replace(example_header(mekong_route_report()), v="9.0")
    with pytest.raises(SchemaError) as exc:
        decode_header(encode(h))
    assert [e.rule for e in exc.value.errors] == ["version"]
