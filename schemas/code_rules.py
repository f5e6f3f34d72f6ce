"""Checks of single values against the code lists (ISO 3166-1 countries, ISO 639-1 and
BCP 47 language tags) and of times, shared by the header and the body rules.

Every check appends a `FieldError` (path and rule) to `errs` instead of raising, so a
document reports all of its errors at once. They run on every message: set lookups
first, anything slower only for what the lookup did not accept.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable
from datetime import date, datetime

from schemas.entities import (
    CURRENCY_PATTERN,
    PHONE_PATTERN,
    REF_PATTERN,
    REGISTRATION_PATTERN,
    Narrative,
)
from schemas.errors import FieldError
from schemas.iso import COUNTRIES, ISO639_1
from schemas.restrictions import Condition

Errors = list[FieldError]


def country(code: str, path: str, errs: Errors) -> None:
    if code not in COUNTRIES:
        errs.append(
            FieldError(
                path, "iso3166-alpha2", f"'{code}' is not an ISO 3166-1 alpha-2 country code"
            )
        )


def countries(codes: Iterable[str], path: str, errs: Errors) -> None:
    for i, code in enumerate(codes):
        if code not in COUNTRIES:
            country(code, f"{path}[{i}]", errs)


_LANG_RE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")


def lang(tag: str, path: str, errs: Errors) -> None:
    if tag in ISO639_1:  # the common case: a bare two-letter code
        return
    # Body language tags are only length-bounded by type (see entities.LangTag).
    if _LANG_RE.fullmatch(tag) is None:
        errs.append(
            FieldError(path, "bcp47", f"'{tag}' is not a language tag such as 'en' or 'zh-Hant'")
        )
        return
    primary = tag.split("-", 1)[0]
    # Three-letter primaries are ISO 639-2/3 (Hmong "hmn", Shan "shn"): languages of the
    # Mekong routes that ISO 639-1 lacks; the pattern already bounds their shape.
    if len(primary) == 2 and primary not in ISO639_1:
        errs.append(FieldError(path, "iso639-1", f"'{primary}' is not an ISO 639-1 language code"))


def narrative(n: Narrative | None, path: str, errs: Errors) -> None:
    if n is not None and n.lang not in ISO639_1:
        lang(n.lang, path + ".lang", errs)


def conditions(conds: list[Condition], path: str, errs: Errors) -> None:
    for i, c in enumerate(conds):
        lang(c.lang, f"{path}[{i}].lang", errs)


def aware(t: datetime | None, path: str, errs: Errors) -> bool:
    if t is not None and t.tzinfo is None:
        errs.append(FieldError(path, "timezone", "the time must carry a UTC offset"))
        return False
    return True


def order(first: date | None, then: date | None, path: str, what: str, errs: Errors) -> None:
    if first is not None and then is not None and then < first:
        errs.append(FieldError(path, "date-order", f"{what}"))


# ---- shapes: what a regex per string checked, as a charset test (see schemas.entities)
# Each is exactly its pattern (a property test compares them on arbitrary text), length
# included, so it also holds for a Struct built in Python rather than decoded.
_REF_CHARS = string.ascii_letters + string.digits + "_-"
_REGISTRATION_CHARS = string.ascii_uppercase + string.digits + " -"


# Refs already accepted. Local refs repeat from message to message ("P1", "G1", "V1"),
# so the rules test `ref in GOOD_REFS` first, one set lookup instead of a call; only
# what ref_ok accepted enters, and at most _GOOD_REFS_MAX of them (a sender inventing
# refs cannot grow it).
GOOD_REFS: set[str] = set()
_GOOD_REFS_MAX = 4096


def ref_ok(s: str) -> bool:
    # Most refs are letters and digits ("P1"), which two C calls settle; otherwise
    # strip() leaves "" only when every character is in the set (non-ASCII never is).
    if s.isalnum() and s.isascii():
        ok = len(s) <= 32
    else:
        ok = 0 < len(s) <= 32 and not s.strip(_REF_CHARS)
    if ok and len(GOOD_REFS) < _GOOD_REFS_MAX:
        GOOD_REFS.add(s)
    return ok


def phone_ok(s: str) -> bool:
    return 8 <= len(s) <= 16 and s[0] == "+" and s[1] != "0" and s.isascii() and s[1:].isdigit()


def currency_ok(s: str) -> bool:
    return len(s) == 3 and s.isascii() and s.isalpha() and s.isupper()


def registration_ok(s: str) -> bool:
    return 0 < len(s) <= 15 and not s.strip(_REGISTRATION_CHARS)


SHAPES: dict[str, Callable[[str], bool]] = {
    REF_PATTERN: ref_ok,
    PHONE_PATTERN: phone_ok,
    CURRENCY_PATTERN: currency_ok,
    REGISTRATION_PATTERN: registration_ok,
}


def at(path: str, i: int) -> str:
    """The path of item `i` of the list at `path` (`i` < 0: `path` itself).

    The rules that run on every item of a list take the list's path and the index, and
    build the item's path here, only for an error: a path per item was a large share of
    the time spent on a valid report."""
    return path if i < 0 else f"{path}[{i}]"


def misshapen(pattern: str, path: str, errs: Errors) -> None:
    """The error msgspec gave for a string its regex refused (rule `pattern`)."""
    errs.append(FieldError(path, "pattern", f"Expected `str` matching regex '{pattern}'"))


def refs_shape(refs: list[str], path: str, errs: Errors) -> None:
    """Every ref of a list (`path` names the list)."""
    if GOOD_REFS.issuperset(refs):
        return
    for i, r in enumerate(refs):
        if not ref_ok(r):
            misshapen(REF_PATTERN, f"{path}[{i}]", errs)
