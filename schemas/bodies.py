"""Body kinds: a tagged union on the field `kind`. Bodies travel encrypted end to end."""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.restrictions import LangTag


class Narrative(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=100_000)]
    lang: LangTag


class IntelReport(
    msgspec.Struct, tag="intel_report", tag_field="kind", forbid_unknown_fields=True, frozen=True
):
    """An intelligence report under Article 10(1)(a)-(f)."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    narrative: Narrative


Body = IntelReport
