"""Signed bytes must read one way only.

- A map key repeated in the signed header: msgspec keeps the last value, a first-wins
  decoder (another implementation, an auditor's tool) keeps the first, so one signature
  would stand for two headers (say, with and without the originator's restrictions).
- An id with a trailing newline: Python's `$` also matches before a final "\\n", so
  `^...$` patterns let "TH-AHTD\\n" or "<message id>\\n" through, into NATS subjects,
  headers and the audit log.
Both are refused with a typed schema error naming the field and the rule.
"""

from __future__ import annotations

import os
import re
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from broker.hosting.stack import DevStack
from clients.sdk.client import AgencyClient
from keys.envelope import header_hash, key_commitment, signed_message
from keys.records import DirectoryEntry
from policies.federation import Federation
from schemas import Category, Level, Restrictions, examples
from schemas.envelope import ENVELOPE_VERSION, Envelope
from schemas.ids import MESSAGE_ID_PATTERN
from transport import subjects as s

# ---- helpers ---------------------------------------------------------------------------


def _entry(key: str, value: Any) -> bytes:
    return msgspec.msgpack.encode(key) + msgspec.msgpack.encode(value)


def _with_repeated(header_bytes: bytes, key: str, first_value: Any) -> bytes:
    """`header_bytes` (a map16, as msgspec encodes a Header) with `key` also written
    once before all other entries, holding `first_value`."""
    assert header_bytes[0] == 0xDE
    pairs = int.from_bytes(header_bytes[1:3], "big") + 1
    return b"\xde" + pairs.to_bytes(2, "big") + _entry(key, first_value) + header_bytes[3:]


def _hand_sealed(client: AgencyClient, header: schemas.Header, body: schemas.Body,
                 edit: Any = None) -> tuple[Envelope, bytes]:
    """A correctly signed, committed envelope whose header bytes `edit` may rewrite
    before signing (the sender's own signature over whatever it chose to write)."""
    key, nonce = os.urandom(32), os.urandom(12)
    header_bytes = schemas.encode(msgspec.structs.replace(header,
                                                          key_commitment=key_commitment(key)))
    if edit is not None:
        header_bytes = edit(header_bytes)
    hh = header_hash(header_bytes)
    ct = nonce + ChaCha20Poly1305(key).encrypt(nonce, schemas.encode(body), hh)
    now = client.clock()
    stanzas = [r.wrap(key, hh) for a in header.recipients
               for r in client.directory.recipients_for(a.strip(), now)]
    env = Envelope(v=ENVELOPE_VERSION, header=header_bytes,
                   signature=client.identity.sign(signed_message(hh, ct)),
                   stanzas=stanzas, ciphertext=ct)
    return env, header_bytes


async def _outcome(client: AgencyClient, match: Any) -> schemas.Outcome:
    for _ in range(40):  # bounded: the broker answers within a second or two
        for out in await client.outcomes(timeout=0.25):
            if match(out):
                return out
    raise AssertionError("no matching outcome")


# ---- repeated keys ---------------------------------------------------------------------


def test_decode_header_refuses_a_repeated_key() -> None:
    header = examples.example_header(examples.mekong_route_report())
    data = schemas.encode(header)
    assert schemas.decode_header(data) == header
    relaxed = msgspec.structs.replace(header.restrictions, no_evidential_use=False)
    twice = _with_repeated(data, "restrictions", relaxed)
    with pytest.raises(schemas.SchemaError) as exc:
        schemas.decode_header(twice)
    [err] = exc.value.errors
    assert (err.path, err.rule) == ("header", "duplicate-key")
    assert "`restrictions`" in err.message


def test_decode_header_refuses_a_repeated_key_in_a_nested_map() -> None:
    header = examples.example_header(examples.mekong_route_report())
    r = schemas.encode(header.restrictions)
    first = r[0]
    assert 0x80 <= first < 0x8F  # a fixmap: one more entry still fits
    nested = bytes([first + 1]) + _entry("tlp", "CLEAR") + r[1:]
    data = schemas.encode(header).replace(r, nested, 1)
    assert msgspec.msgpack.decode(data, type=schemas.Header).restrictions.tlp == "AMBER"
    with pytest.raises(schemas.SchemaError) as exc:
        schemas.decode_header(data)
    [err] = exc.value.errors
    assert (err.path, err.rule) == ("header.restrictions", "duplicate-key")
    assert "`tlp`" in err.message


def test_json_documents_refuse_a_repeated_key() -> None:
    header = examples.example_header(examples.mekong_route_report())
    text = schemas.encode_json(header)
    twice = b'{"level":"UNCLASSIFIED",' + text[1:]
    with pytest.raises(schemas.SchemaError) as exc:
        schemas.decode_header_json(twice)
    assert exc.value.errors[0].rule == "duplicate-key"
    assert any(e.rule == "duplicate-key" for e in schemas.validate_json(twice))
    assert schemas.validate_json(text) == []


async def test_broker_refuses_a_signed_header_with_a_repeated_key(
    stack: DevStack, agency  # type: ignore[no-untyped-def]
) -> None:
    """The sender signs a header whose restrictions appear twice: with `exclude` first
    (what a first-wins reader sees), without it last (what msgspec would see)."""
    th: AgencyClient = await agency("TH-AHTD")
    kh: AgencyClient = await agency("KH-AHTJP")
    report = examples.mekong_route_report()
    draft = th.draft(report, category=Category.ROUTES, level=Level.RESTRICTED,
                     to=["KH-AHTJP"])
    strict = Restrictions(exclude=["KH"], no_onward_dissemination=True)
    env, _ = _hand_sealed(th, draft, report,
                          edit=lambda b: _with_repeated(b, "restrictions", strict))
    await th.js.publish(s.submit("TH-AHTD"), schemas.encode_envelope(env),
                        headers={"Nats-Msg-Id": draft.id})
    out = await th.wait_outcome(draft.id)
    assert out.status == "rejected" and out.delivered == []
    assert "duplicate-key" in (out.error or "") and "restrictions" in (out.error or "")
    assert (await kh.inbox(timeout=0.5)).messages == []


# ---- trailing newlines -----------------------------------------------------------------


def _patterns() -> list[str]:
    """Every regex a wire Struct checks a string against."""
    found: set[str] = set()
    seen: set[int] = set()

    def walk(node: Any) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, msgspec.inspect.StrType) and node.pattern:
            found.add(node.pattern)
        if isinstance(node, (list, tuple)):
            for n in node:
                walk(n)
        elif isinstance(node, msgspec.Struct):
            for f in node.__struct_fields__:
                walk(getattr(node, f))

    walk(msgspec.inspect.multi_type_info(
        [schemas.Header, schemas.Body, DirectoryEntry, Federation]))
    return sorted(found)


PATTERNS = _patterns()


def test_the_wire_has_patterns_to_check() -> None:
    assert len(PATTERNS) >= 15
    assert MESSAGE_ID_PATTERN in PATTERNS


@settings(max_examples=200, deadline=None, derandomize=True)
@given(data=st.data())
def test_no_wire_pattern_accepts_a_trailing_newline(data: st.DataObject) -> None:
    pattern = data.draw(st.sampled_from(PATTERNS))
    value = data.draw(st.from_regex(pattern, fullmatch=True))
    assert re.search(pattern, value)  # msgspec applies patterns with re.search
    assert re.search(pattern, value + "\n") is None, pattern


@pytest.mark.parametrize("value", ["TH-AHTD\n", "TH-AHTD\r\n"])
def test_agency_id_checks_refuse_a_trailing_newline(value: str) -> None:
    with pytest.raises(ValueError):
        s.deliver(value)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"exclude": [value]}, type=Restrictions)


async def test_broker_refuses_a_message_id_with_a_trailing_newline(
    stack: DevStack, agency  # type: ignore[no-untyped-def]
) -> None:
    th: AgencyClient = await agency("TH-AHTD")
    report = examples.mekong_route_report()
    draft = th.draft(report, category=Category.ROUTES, level=Level.RESTRICTED,
                     to=["KH-AHTJP"])
    evil = msgspec.structs.replace(draft, id=draft.id + "\n")
    env, _ = _hand_sealed(th, evil, report)
    await th.js.publish(s.submit("TH-AHTD"), schemas.encode_envelope(env),
                        headers={"Nats-Msg-Id": draft.id})
    out = await _outcome(th, lambda o: o.message_id in (draft.id, "", evil.id))
    assert out.status == "rejected" and out.delivered == [], out
    assert "header.id" in (out.error or "")
