"""Semantic validation: the rules a msgspec type cannot express, reporting every failure
with its full path and rule. One module per job:

* `schemas.structural`: `structural_errors(raw, type_, root)`, every missing, unknown or
  ill-typed field of a document msgspec refused (the failure path only);
* `schemas.header_rules`: `check_header` / `validate_header`;
* `schemas.body_rules`: `check_body` / `validate_body`, built on
* `schemas.entity_rules` (persons, documents, vessels, routes, refs) and
* `schemas.code_rules` (ISO 3166-1, ISO 639-1 / BCP 47, times).

The rules run on every message, so they use precomputed sets and plain attribute
access, no regex on the common path. This module is the public entry point.
"""

from __future__ import annotations

from schemas.body_rules import check_body, validate_body
from schemas.entity_rules import imo_check_digit_ok
from schemas.header_rules import check_header, validate_header
from schemas.structural import structural_errors

__all__ = [
    "check_body",
    "check_header",
    "imo_check_digit_ok",
    "structural_errors",
    "validate_body",
    "validate_header",
]
