"""Encoding and decoding with validation: structural (msgspec) then semantic.

msgspec stops at the first structural error; on that (rare) path we decode the bytes
untyped and walk them against the same Structs to report every error at once.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from schemas import limits
from schemas.bodies import Body
from schemas.duplicates import json_duplicates, msgpack_duplicates
from schemas.errors import FieldError, SchemaError
from schemas.header import SCHEMA_VERSION, Header
from schemas.validate import (
    check_body,
    check_header,
    structural_errors,
    validate_body,
    validate_header,
)

__all__ = [
    "check_version",
    "decode_body",
    "decode_body_json",
    "decode_header",
    "decode_header_json",
    "decode_message",
    "encode",
    "encode_json",
    "structural_error",
    "validate_body",
    "validate_header",
    "validate_json",
]

_encoder = msgspec.msgpack.Encoder()
_json_encoder = msgspec.json.Encoder()
_header_decoder = msgspec.msgpack.Decoder(Header)
_body_decoder: msgspec.msgpack.Decoder[Body] = msgspec.msgpack.Decoder(Body)
_header_json_decoder = msgspec.json.Decoder(Header)
_body_json_decoder: msgspec.json.Decoder[Body] = msgspec.json.Decoder(Body)

_PATH_RE = re.compile(r"at `\$(?P<path>[^`]*)`")


def encode(obj: Any) -> bytes:
    """msgpack bytes of any schemas Struct."""
    return _encoder.encode(obj)


def encode_json(obj: Any) -> bytes:
    """JSON bytes of any schemas Struct (for people, files and the JSON Schemas)."""
    return _json_encoder.encode(obj)


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


def _version_errors(version: str) -> list[FieldError]:
    try:
        check_version(version)
    except SchemaError as exc:
        return exc.errors
    return []


def _all_structural(
    exc: msgspec.DecodeError | UnicodeDecodeError, data: bytes, tp: Any, root: str, fmt: str
) -> SchemaError:
    if not isinstance(exc, msgspec.ValidationError):
        # Not even well-formed msgpack/JSON: nothing to walk.
        rule = "msgpack" if fmt == "msgpack" else "json"
        return SchemaError.single(root, rule, f"not valid {fmt}: {exc}")
    try:
        raw = msgspec.msgpack.decode(data) if fmt == "msgpack" else msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as inner:
        # Typed decoding can fail on content before it notices trailing bytes.
        return SchemaError.single(root, fmt, f"not valid {fmt}: {inner}")
    errs = structural_errors(raw, tp, root)
    return SchemaError(errs) if errs else structural_error(exc, root)


def _finish_header(header: Header) -> Header:
    errs = _version_errors(header.v)
    if not errs:  # a newer major version's rules are not ours to judge
        errs = check_header(header)
    if errs:
        raise SchemaError(errs)
    return header


def decode_header(data: bytes) -> Header:
    """Header from msgpack bytes: limits (before decoding), structure, no repeated key
    (the bytes are what is signed, and a repeated key reads differently to a first-wins
    decoder), version, then semantic rules."""
    limits.check(data, limits.HEADER, "header")
    try:
        header = _header_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _all_structural(exc, data, Header, "header", "msgpack") from None
    dups = msgpack_duplicates(data, "header", decoded=header)
    if dups:
        raise SchemaError(dups)
    return _finish_header(header)


def decode_body(data: bytes, header: Header | None = None) -> Body:
    """Body from msgpack bytes: structure then semantic rules (and, given the header,
    that header.kind matches the body's tag)."""
    try:
        body = _body_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _all_structural(exc, data, Body, "body", "msgpack") from None
    errs = check_body(body, header)  # validate_body's work, one call fewer
    if errs:
        raise SchemaError(errs)
    return body


def decode_message(header_data: bytes, body_data: bytes) -> tuple[Header, Body]:
    """Both halves, with every error of either reported together."""
    errs: list[FieldError] = []
    header: Header | None = None
    body: Body | None = None
    try:
        header = decode_header(header_data)
    except SchemaError as exc:
        errs.extend(exc.errors)
    try:
        body = _body_decoder.decode(body_data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        errs.extend(_all_structural(exc, body_data, Body, "body", "msgpack").errors)
    if body is not None:
        errs.extend(check_body(body, header))
    if errs:
        raise SchemaError(errs)
    assert header is not None and body is not None
    return header, body


def decode_header_json(data: bytes) -> Header:
    try:
        header = _header_json_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _all_structural(exc, data, Header, "header", "json") from None
    dups = json_duplicates(data, "header", decoded=header)
    if dups:
        raise SchemaError(dups)
    return _finish_header(header)


def decode_body_json(data: bytes, header: Header | None = None) -> Body:
    try:
        body = _body_json_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise _all_structural(exc, data, Body, "body", "json") from None
    validate_body(body, header)
    return body


def validate_json(data: bytes) -> list[FieldError]:
    """Every error of a JSON document: a message `{"header": ..., "body": ...}`, a header
    alone (it has `v`) or a body alone. An empty list means valid."""
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        return [FieldError("$", "json", f"not valid JSON: {exc}")]
    if not isinstance(raw, dict):
        return [FieldError("$", "type", "expected a JSON object")]
    errs: list[FieldError] = json_duplicates(data, "$")
    header: Header | None = None
    if "header" in raw or "body" in raw:
        extra = sorted(set(raw) - {"header", "body"})
        errs.extend(FieldError(k, "unknown-field", f"unknown field `{k}`") for k in extra)
        parts = {k: raw[k] for k in ("header", "body") if k in raw}
    elif "v" in raw:
        parts = {"header": raw}
    else:
        parts = {"body": raw}
    if "header" in parts:
        try:
            header = decode_header_json(msgspec.json.encode(parts["header"]))
        except SchemaError as exc:
            errs.extend(exc.errors)
    if "body" in parts:
        encoded = msgspec.json.encode(parts["body"])
        try:
            body = _body_json_decoder.decode(encoded)
        except msgspec.DecodeError as exc:
            errs.extend(_all_structural(exc, encoded, Body, "body", "json").errors)
        else:
            errs.extend(check_body(body, header))
    return errs
