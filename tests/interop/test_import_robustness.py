"""Importers raise nothing but typed errors (`InteropImportError`, `MarkingConflict`),
whatever the file holds: arbitrary JSON, and our own exports with values replaced."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients.interop import importer
from clients.interop.export import render
from clients.interop.markings import MarkingConflict
from schemas import examples

TYPED = (importer.InteropImportError, MarkingConflict)
# A well-formed draft, or one of the typed errors by name.
ACCEPTED = {"orcon-draft/1", *(t.__name__ for t in TYPED)}
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=10)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = json.loads(json.dumps(doc))
    target = doc
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    return doc


def _exported(fmt: str) -> Any:
    body = examples.arrest_alert()
    h = examples.example_header(body)
    data, _ = render(fmt, h, body, h.restrictions)  # type: ignore[arg-type]
    return json.loads(data)


BUNDLE, EVENT = _exported("stix"), _exported("misp")
BUNDLE_PATHS, EVENT_PATHS = _paths(BUNDLE), _paths(EVENT)


def _outcome(fmt: str, doc: Any) -> str:
    """The draft's format tag, or the name of the typed error it raised; anything else
    (an untyped exception) propagates and fails the test."""
    data = json.dumps(doc).encode()
    try:
        draft = importer.from_stix(data) if fmt == "stix" else importer.from_misp(data)
    except TYPED as exc:
        return type(exc).__name__
    return draft.draft


@SETTINGS
@given(doc=json_values, fmt=st.sampled_from(["stix", "misp"]))
def test_arbitrary_json_gives_typed_errors(doc: Any, fmt: str) -> None:
    assert _outcome(fmt, doc) in ACCEPTED


@SETTINGS
@given(i=st.integers(0, len(BUNDLE_PATHS) - 1), value=json_values)
def test_mutated_bundles_give_typed_errors(i: int, value: Any) -> None:
    assert _outcome("stix", _replace(BUNDLE, BUNDLE_PATHS[i], value)) in ACCEPTED


@SETTINGS
@given(i=st.integers(0, len(EVENT_PATHS) - 1), value=json_values)
def test_mutated_events_give_typed_errors(i: int, value: Any) -> None:
    assert _outcome("misp", _replace(EVENT, EVENT_PATHS[i], value)) in ACCEPTED


def test_not_json_is_a_typed_error() -> None:
    with pytest.raises(importer.InteropImportError) as exc:
        importer.from_stix(b"\xff\xfe not json")
    assert exc.value.field == "file"
