"""Encoding and decoding with validation: structural (msgspec) then semantic."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from schemas.bodies import Body
from schemas.errors import FieldError, SchemaError
from schemas.header import SCHEMA_VERSION, Header

_encoder = msgspec.msgpack.Encoder()
_header_decoder = msgspec.msgpack.Decoder(Header)
_body_decoder: msgspec.msgpack.Decoder[Body] = msgspec.msgpack.Decoder(Body)  # type: ignore[arg-type]

_PATH_RE = re.compile(r"at `\$(?P<path>[^`]*)`")


def encode(obj: Any) -> bytes:
    """msgpack bytes of any schemas Struct."""
    return _encoder.encode(obj)


def structural_error(exc: msgspec.ValidationError | msgspec.DecodeError, root: str) -> SchemaError:
    """Turn msgspec's message ("Expected `str`, got `int` - at `$.sender`") into a FieldError
    whose path starts at `root`."""
    text = str(exc)
    match = _PATH_RE.search(text)
    path = root + (match.group("path") if match else "")
    message = _PATH_RE.sub("", text).rstrip(" -")
    # ValidationError subclasses DecodeError: test the narrower type first.
    rule = "structure" if isinstance(exc, msgspec.ValidationError) else "msgpack"
    if "unknown field" in message.lower():
        rule = "unknown-field"
    elif "missing required field" in message.lower():
        rule = "required"
    return SchemaError([FieldError(path, rule, message)])


def check_version(version: str, path: str = "header.v") -> None:
    """A reader refuses a newer major version: it cannot know what it would ignore."""
    ours = int(SCHEMA_VERSION.split(".")[0])
    try:
        major = int(version.split(".")[0])
    except ValueError:
        raise SchemaError.single(path, "version", f"'{version}' is not MAJOR.MINOR") from None
    if major > ours:
        raise SchemaError.single(
            path,
            "version",
            f"schema version {version} is newer than this reader ({SCHEMA_VERSION}); upgrade orcon",
        )


def validate_header(header: Header) -> None:
    """Semantic rules that a type cannot express. Raises SchemaError with every failure."""
    errors: list[FieldError] = []
    r = header.restrictions
    if r.expires_at is not None and r.expires_at <= header.created_at:
        errors.append(
            FieldError(
                "header.restrictions.expires_at",
                "after-created",
                "expires_at must be after created_at",
            )
        )
    if r.not_before is not None and r.expires_at is not None and r.expires_at <= r.not_before:
        errors.append(
            FieldError(
                "header.restrictions.expires_at",
                "after-not-before",
                "expires_at must be after not_before",
            )
        )
    overlap = sorted(set(r.release_to) & set(r.exclude))
    if overlap:
        errors.append(
            FieldError(
                "header.restrictions.exclude",
                "release-exclude-disjoint",
                f"{', '.join(overlap)} cannot be both released to and excluded",
            )
        )
    if header.recipients != sorted(set(header.recipients)):
        errors.append(
            FieldError("header.recipients", "sorted-unique", "recipients must be sorted and unique")
        )
    if header.created_at.tzinfo is None:
        errors.append(
            FieldError("header.created_at", "timezone", "created_at must carry a UTC offset")
        )
    if errors:
        raise SchemaError(errors)


def decode_header(data: bytes) -> Header:
    try:
        header = _header_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise structural_error(exc, "header") from None
    check_version(header.v)
    validate_header(header)
    return header


def decode_body(data: bytes) -> Body:
    try:
        return _body_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise structural_error(exc, "body") from None
