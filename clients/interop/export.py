"""Exporting a message from the agency's store: a declared, checked and audited use.

`export_message` declares the export to the broker as a use of kind `export` (the rule
lives with every other use rule, in policies/cedar/restrictions.cedar): refused under
TLP:RED, for a purpose the originator did not permit, and under no onward dissemination
unless the originator consented to this agency's export (a consent of scope
`onward_dissemination` naming the holder itself). Only after the broker has recorded
the declaration is the bundle or event built, under the restrictions that bind this
agency (tightened ones for a forwarded copy). The originator's own messages bind no one
and are exported without a declaration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import schemas
from schemas.codes import UseKind

if TYPE_CHECKING:
    from clients.sdk.holder import Holder

Format = Literal["stix", "misp"]


@dataclass(frozen=True)
class Exported:
    data: bytes  # the bundle or event, JSON
    declaration: schemas.Header | None  # the signed use declaration (None: own message)
    distribution: int | None = None  # MISP only


def render(fmt: Format, header: schemas.Header, body: schemas.Body,
           restrictions: schemas.Restrictions) -> tuple[bytes, int | None]:
    """The export itself, without any check: callers are `export_message` and tests."""
    if fmt == "stix":
        from clients.interop.stix import to_bundle

        bundle = to_bundle(header, body, restrictions)
        return (json.dumps(bundle, indent=2, ensure_ascii=False) + "\n").encode(), None
    from clients.interop.misp import to_event

    ev = to_event(header, body, restrictions)
    text = json.dumps({"Event": json.loads(ev.to_json())}, indent=2, ensure_ascii=False)
    return (text + "\n").encode(), int(ev.distribution)


async def export_message(holder: Holder, message_id: str, fmt: Format,
                         purpose: schemas.Purpose, *, note: str | None = None) -> Exported:
    """Declare the export (raises `UseRefused` naming the restriction), then render.

    The broker decides, not a local pre-check: an attempt to take restricted
    information out of orcon is itself worth recording, so a refused export is in the
    audit log (`use_refused`, action `export`) like an allowed one (`use_declared`)."""
    row = holder.get(message_id)
    header = row.header
    declaration = None
    if header.sender != holder.agency:
        declaration = await holder.use(message_id, purpose, note=note, use=UseKind.EXPORT,
                                       check=False)
    data, distribution = render(fmt, header, row.body, row.restrictions)
    return Exported(data, declaration, distribution)
