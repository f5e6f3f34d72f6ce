"""The broker decodes each submission once (issue 18): one envelope decode, one header
decode, one hash of the signed header, for a message routed to two recipients.

The schemas' decoders and the header hash are wrapped with recorders wherever a module
holds them; only calls made from the broker's code (broker/) are kept, so the sender's
sealing and the recipients' opening in this process are not counted. The draft the
sender resolves first is a different document (no key commitment) and is told apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import broker
import schemas
import schemas.message
from clients.sdk.client import AgencyClient
from schemas import Category, Level
from tests.support.counting import called_from, wrap_everywhere

BROKER = str(Path(broker.__file__).parent)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def wrap(self, monkeypatch: pytest.MonkeyPatch, name: str, original: Any,
             key: Callable[[tuple[Any, ...], Any], Any]) -> None:
        def seen(args: tuple[Any, ...], result: Any) -> None:
            if called_from(BROKER):
                self.calls.append((name, key(args, result)))

        wrap_everywhere(monkeypatch, original, seen)


async def test_a_submission_is_decoded_and_hashed_once_by_the_broker(
        agency: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch) -> None:
    th: AgencyClient = await agency("TH-AHTD")
    rec = Recorder()
    rec.wrap(monkeypatch, "envelope", schemas.decode_envelope, lambda a, env: env.header)
    rec.wrap(monkeypatch, "header", schemas.decode_header,
             lambda a, h: (h.id, h.key_commitment is not None))
    rec.wrap(monkeypatch, "header hash", schemas.message.header_hash, lambda a, _: a[0])

    sent = await th.send(schemas.IntelReport(
        title="Mekong crossing",
        narrative=schemas.Narrative(text="Boats leave at night.", lang="en")),
        category=Category.ROUTES, level=Level.CONFIDENTIAL, to=["KH-AHTJP", "VN-MPS"])
    outcome = await th.wait_outcome(sent.header.id)
    assert sorted(outcome.delivered) == ["KH-AHTJP", "VN-MPS"]
    assert sent.message is not None
    signed = sent.message.header_bytes

    counts = Counter(name for name, key in rec.calls
                     if key in (signed, (sent.header.id, True)))
    assert counts == {"envelope": 1, "header": 1, "header hash": 1}
    # The resolve step read the unsealed draft, a document of its own.
    assert ("header", (sent.header.id, False)) in rec.calls
