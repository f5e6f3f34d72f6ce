"""Every structural error of an undecoded document, at once.

msgspec stops at the first problem when it refuses a document; `structural_errors` walks
the undecoded document (msgpack or JSON objects) against the same Struct types and lists
every missing, unknown or ill-typed field, with its path and rule. It only runs on the
failure path, so its cost never touches valid traffic.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Union

import msgspec

from schemas.bodies import ExtraditionRequest, MLARequest
from schemas.code_rules import SHAPES, misshapen
from schemas.errors import FieldError

__all__ = ["structural_errors"]

_Errors = list[FieldError]

# Which legal text requires a field, so a missing one is explained in the law's words.
_REQUIRED_BY: dict[type[Any], dict[str, str]] = {
    MLARequest: {
        "requesting_authority": "UNTOC art. 18(15)(a)",
        "subject_matter": "UNTOC art. 18(15)(b)",
        "proceeding": "UNTOC art. 18(15)(b)",
        "conducting_authority": "UNTOC art. 18(15)(b)",
        "assistance": "UNTOC art. 18(15)(d)",
        "assistance_description": "UNTOC art. 18(15)(d)",
        "purpose": "UNTOC art. 18(15)(f)",
    },
    ExtraditionRequest: {
        "person": "toolkit 6.6: identity of the person sought",
        "facts_and_history": "toolkit 6.6: facts and procedural history",
        "provisions": "toolkit 6.6: legal provisions",
        "limitation": "toolkit 6.6: statute of limitations",
        "legal_basis": "toolkit 6.6: legal basis",
        "stage": "toolkit 6.6: accused or convicted documents",
    },
}


def _rule_of(message: str) -> str:
    m = message.lower()
    if "invalid enum value" in m:
        return "enum"
    if "regex" in m:
        return "pattern"
    if "length" in m:
        return "length"
    if "timezone" in m:
        return "timezone"
    if "expected `" in m and ("<=" in m or ">=" in m or "< " in m or "> " in m):
        return "range"
    if "expected `" in m:
        return "type"
    return "structure"


def _leaf(raw: object, tp: Any, path: str, errs: _Errors) -> None:
    try:
        msgspec.convert(raw, tp)
    except msgspec.ValidationError as exc:
        text = str(exc)
        sub = ""
        if " - at `$" in text:
            text, _, rest = text.partition(" - at `$")
            sub = rest.rstrip("`")
        errs.append(FieldError(path + sub, _rule_of(text), text))


def _struct_types(tp: Any) -> list[type[msgspec.Struct]]:
    return [a for a in typing.get_args(tp) if isinstance(a, type) and issubclass(a, msgspec.Struct)]


def structural_errors(raw: object, tp: Any, path: str) -> list[FieldError]:
    """Every structural error of the undecoded `raw` (msgpack/JSON objects) against `tp`."""
    errs: _Errors = []
    _walk(raw, tp, path, errs)
    return errs


def _walk(raw: object, tp: Any, path: str, errs: _Errors) -> None:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner, *metas = typing.get_args(tp)
        if typing.get_origin(inner) is list and isinstance(raw, list):
            for meta in metas:
                if isinstance(meta, msgspec.Meta):
                    lo, hi = meta.min_length, meta.max_length
                    if (lo is not None and len(raw) < lo) or (hi is not None and len(raw) > hi):
                        _leaf(raw, tp, path, errs)
                        return
            _walk(raw, inner, path, errs)
            return
        before = len(errs)
        _leaf(raw, tp, path, errs)
        if len(errs) == before and isinstance(raw, str):
            _shape(raw, metas, path, errs)
        return
    if origin is list:
        if not isinstance(raw, list):
            _leaf(raw, tp, path, errs)
            return
        (item,) = typing.get_args(tp)
        for i, x in enumerate(raw):
            _walk(x, item, f"{path}[{i}]", errs)
        return
    if origin is Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if raw is None and type(None) in args:
            return
        structs = _struct_types(tp)
        if structs and isinstance(raw, dict):
            if len(structs) == 1:
                _walk(raw, structs[0], path, errs)
                return
            field = structs[0].__struct_config__.tag_field
            by_tag = {s.__struct_config__.tag: s for s in structs}
            tag = raw.get(field)
            if isinstance(tag, str) and tag in by_tag:
                _walk(raw, by_tag[tag], path, errs)
                return
            errs.append(
                FieldError(
                    f"{path}.{field}",
                    "tag",
                    f"`{field}` must be one of {', '.join(sorted(map(str, by_tag)))}",
                )
            )
            return
        annotated = [a for a in args if typing.get_origin(a) is typing.Annotated]
        if isinstance(raw, str) and len(annotated) == 1:
            _walk(raw, annotated[0], path, errs)  # an optional code: its shape too
            return
        _leaf(raw, tp, path, errs)
        return
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        if not isinstance(raw, dict):
            _leaf(raw, tp, path, errs)
            return
        config = tp.__struct_config__
        fields = msgspec.structs.fields(tp)
        known = {f.encode_name for f in fields}
        if config.tag_field is not None:
            known.add(config.tag_field)
            if raw.get(config.tag_field, config.tag) != config.tag:
                errs.append(
                    FieldError(
                        f"{path}.{config.tag_field}",
                        "tag",
                        f"`{config.tag_field}` must be '{config.tag}'",
                    )
                )
        for key in raw:
            if key not in known:
                errs.append(FieldError(f"{path}.{key}", "unknown-field", f"unknown field `{key}`"))
        law = _REQUIRED_BY.get(tp, {})
        for f in fields:
            if f.encode_name in raw:
                _walk(raw[f.encode_name], f.type, f"{path}.{f.encode_name}", errs)
            elif f.required:
                basis = law.get(f.name)
                errs.append(
                    FieldError(
                        f"{path}.{f.encode_name}",
                        "required",
                        f"missing required field `{f.encode_name}`"
                        + (f" ({basis})" if basis else ""),
                    )
                )
        return
    _leaf(raw, tp, path, errs)


def _shape(raw: str, metas: list[Any], path: str, errs: _Errors) -> None:
    """The shapes the body rules check instead of msgspec (schemas.code_rules.SHAPES),
    so a document with other structural errors still reports them all."""
    for meta in metas:
        if isinstance(meta, msgspec.Meta) and meta.extra_json_schema:
            pattern = meta.extra_json_schema.get("pattern")
            ok = SHAPES.get(pattern) if isinstance(pattern, str) else None
            if ok is not None and not ok(raw):
                misshapen(str(pattern), path, errs)
