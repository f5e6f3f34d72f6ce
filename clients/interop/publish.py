"""Writes the published interop artefacts, generated from `clients.interop.markings` and
`clients.interop.tags`:

    schemas/stix/<orcon extension definition id>.json   JSON Schema of the orcon marking
    schemas/misp/orcon/machinetag.json                   the orcon MISP taxonomy

Run `python -m clients.interop.publish` after changing `OrconMarking` or the taxonomy;
tests/interop fail while the committed files differ from what this writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clients.interop import markings as mk
from clients.interop import tags as tg

ROOT = Path(__file__).resolve().parents[2]
EXTENSION_SCHEMA = ROOT / mk.EXTENSION_SCHEMA_PATH
TAXONOMY = ROOT / "schemas" / "misp" / tg.TAXONOMY / "machinetag.json"


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def artefacts() -> dict[Path, str]:
    return {EXTENSION_SCHEMA: render(mk.extension_schema()), TAXONOMY: render(tg.taxonomy())}


def main() -> None:
    for path, text in artefacts().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
