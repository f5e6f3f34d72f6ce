"""Which plain registry names mean a country: the ISO 3166-1 alpha-2 codes of
`schemas.iso` (the one copy of the list; embedded there so it cannot shift under a
dependency upgrade without a policy-version change). Only officially assigned codes
name a country here: the user-assigned "XK" that documents may carry is not a
registry name."""

from __future__ import annotations

from schemas.iso import ISO3166_ALPHA2

ISO_COUNTRIES: frozenset[str] = ISO3166_ALPHA2


def is_country(name: str) -> bool:
    return name in ISO_COUNTRIES
