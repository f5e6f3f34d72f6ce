"""Hypothesis strategies derived from the Structs themselves (msgspec.inspect), so they
follow every field the schemas gain without being edited."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from schemas.bodies import Body
from schemas.code_rules import SHAPES
from schemas.header import Header
from schemas.iso import COUNTRIES

_COUNTRY = r"^[A-Z]{2}$"
_LANG = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
# Mostly real codes, so generated documents also reach the semantic rules beyond codes.
_COUNTRIES = st.one_of(st.sampled_from(sorted(COUNTRIES)), st.from_regex(_COUNTRY, fullmatch=True))
_LANGS = st.one_of(
    st.sampled_from(["en", "th", "lo", "my", "vi", "km", "zh", "fr", "hmn", "zh-Hant"]),
    st.from_regex(_LANG, fullmatch=True).filter(lambda s: len(s) <= 35),
)


def _str(t: mi.StrType) -> st.SearchStrategy[str]:
    if t.pattern == _COUNTRY:
        return _COUNTRIES
    if t.pattern == _LANG:
        return _LANGS
    lo, hi = t.min_length or 0, t.max_length
    if t.pattern is not None:
        return st.from_regex(t.pattern, fullmatch=True).filter(
            lambda s: len(s) >= lo and (hi is None or len(s) <= hi)
        )
    return st.text(min_size=lo, max_size=min(hi or 24, 24))


def _num(t: mi.IntType | mi.FloatType) -> st.SearchStrategy[Any]:
    lo = t.ge if t.ge is not None else (t.gt if t.gt is not None else None)
    hi = t.le if t.le is not None else (t.lt if t.lt is not None else None)
    if isinstance(t, mi.IntType):
        return st.integers(
            min_value=int(lo) + (1 if t.gt is not None else 0) if lo is not None else -(2**40),
            max_value=int(hi) - (1 if t.lt is not None else 0) if hi is not None else 2**40,
        )
    return st.floats(
        min_value=lo if lo is not None else -1e9,
        max_value=hi if hi is not None else 1e9,
        exclude_min=t.gt is not None,
        exclude_max=t.lt is not None,
        allow_nan=False,
        allow_infinity=False,
    )


def strategy(t: mi.Type) -> st.SearchStrategy[Any]:
    if isinstance(t, mi.Metadata):
        # Codes that the semantic layer checks carry their pattern only for JSON Schema.
        pattern = (t.extra_json_schema or {}).get("pattern")
        if pattern == _COUNTRY:
            return _COUNTRIES
        if pattern == _LANG:
            return _LANGS
        if pattern in SHAPES:  # short codes the body rules check (schemas.code_rules)
            return st.from_regex(pattern, fullmatch=True)
        return strategy(t.type)
    if isinstance(t, mi.StrType):
        return _str(t)
    if isinstance(t, mi.IntType | mi.FloatType):
        return _num(t)
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.BytesType):  # life-cycle proofs (schemas/acts.py)
        lo = t.min_length or 0
        return st.binary(min_size=lo, max_size=lo if t.max_length == lo else lo + 8)
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.EnumType):
        return st.sampled_from(list(t.cls))
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(list(t.values))
    if isinstance(t, mi.DateTimeType):
        return st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
        )
    if isinstance(t, mi.DateType):
        return st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))
    if isinstance(t, mi.ListType):
        return st.lists(
            strategy(t.item_type), min_size=t.min_length or 0, max_size=max(t.min_length or 0, 2)
        )
    if isinstance(t, mi.UnionType):
        return st.one_of([strategy(x) for x in t.types])
    if isinstance(t, mi.StructType):
        return struct_strategy(t.cls)
    raise NotImplementedError(f"no strategy for {t!r}")


@cache
def struct_strategy(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    required = {f.name: strategy(f.type) for f in info.fields if f.required}
    optional = {f.name: strategy(f.type) for f in info.fields if not f.required}
    return st.fixed_dictionaries(required, optional=optional).map(lambda kw: cls(**kw))


def bodies() -> st.SearchStrategy[Any]:
    return strategy(mi.type_info(Body))


def headers() -> st.SearchStrategy[Header]:
    return struct_strategy(Header)


def json_values() -> st.SearchStrategy[Any]:
    """Arbitrary JSON-like junk to put where a field's value should be."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=5,
    )


def patterned(value: Any, info: Any, path: str,
              patterns: Collection[str]) -> list[tuple[str, str]]:
    """(path, pattern) of every string in the builtins `value` (of msgspec type `info`)
    whose type carries one of `patterns` in its JSON Schema: where a body's codes and
    shaped fields stand, for tests that break them one at a time."""
    if isinstance(info, mi.Metadata):
        pattern = (info.extra_json_schema or {}).get("pattern")
        if pattern in patterns and isinstance(value, str):
            return [(path, pattern)]
        return patterned(value, info.type, path, patterns)
    if isinstance(info, mi.UnionType):
        structs = [t for t in info.types if isinstance(t, mi.StructType)]
        if isinstance(value, dict) and structs:
            tagged = [t for t in structs if t.tag_field and value.get(t.tag_field) == t.tag]
            return patterned(value, (tagged or structs)[0], path, patterns)
        return [hit for t in info.types if not isinstance(t, mi.StructType)
                for hit in patterned(value, t, path, patterns)]
    if isinstance(info, mi.ListType) and isinstance(value, list):
        return [hit for i, v in enumerate(value)
                for hit in patterned(v, info.item_type, f"{path}[{i}]", patterns)]
    if isinstance(info, mi.StructType) and isinstance(value, dict):
        return [hit for f in info.fields if f.encode_name in value
                for hit in patterned(value[f.encode_name], f.type, f"{path}.{f.encode_name}",
                                     patterns)]
    return []


def replace_at(doc: Any, path: str, new: str) -> Any:
    """`doc` (builtins of a body) with the string at `path` ("body.persons[2].x")
    replaced by `new`."""
    steps = re.findall(r"\.(\w+)|\[(\d+)\]", path.removeprefix("body"))
    node = doc
    for key, index in steps[:-1]:
        node = node[key] if key else node[int(index)]
    key, index = steps[-1]
    if key:
        node[key] = new
    else:
        node[int(index)] = new
    return doc
