"""Resolve: who may receive a draft, decided before the sender seals anything.

Pure (no I/O): `resolve_draft` turns a resolve request into the reply the sender sees
and the audit events that record it. Every refusal the sender is shown is logged, like
the refusals at routing: a recipient refused here never appears in the signed header,
so this is the only record of that decision. Events carry `details["stage"] =
"resolve"` so an auditor tells them from routing decisions.

A draft whose restrictions, audience or recipients name something the federation does
not know is refused as a whole (fail closed), field by field, with the nearest valid
values (`policies.names`); so is a draft that breaks a schema rule (e.g. TLP:RED with an
audience). `unresolved` is the same check for a submission, for an SDK that skipped it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

import schemas
from broker.audit.events import AuditEvent
from policies.engine import PolicyEngine
from policies.names import header_errors, raw_header_errors
from schemas.errors import FieldError
from schemas.events import EventType
from schemas.ids import MESSAGE_ID_PATTERN

RULE_SENDER = "sender.subject"
RULE_SCHEMA = "schema"
STAGE = "resolve"


@dataclass
class Resolution:
    reply: schemas.ResolveReply
    events: list[tuple[str, AuditEvent]] = field(default_factory=list)  # (dedupe id, event)


def _draft_errors(engine: PolicyEngine, data: bytes) -> tuple[schemas.Header | None,
                                                            list[FieldError]]:
    """The decoded draft, or every reason it cannot be sent (unresolvable names first,
    then schema errors on other paths: `mm` fails the pattern AND names nothing, and the
    name error is the one that says what was meant)."""
    try:
        raw = msgspec.msgpack.decode(data)
    except msgspec.DecodeError as exc:
        return None, [FieldError("header", RULE_SCHEMA, f"not a msgpack header: {exc}")]
    names = raw_header_errors(engine.vocabulary, raw)
    try:
        header = schemas.decode_header(data)
        schema_errors: list[FieldError] = []
    except schemas.SchemaError as exc:
        header, schema_errors = None, exc.errors
    named = {e.path for e in names}
    errors = names + [e for e in schema_errors if e.path not in named]
    return (header if not errors else None), errors


def resolve_draft(engine: PolicyEngine, asker: str, data: bytes, now: datetime,
                  broker_id: str) -> Resolution:
    def event(type_: EventType, **kw: object) -> AuditEvent:
        return AuditEvent(type=type_, at=now, broker=broker_id, actor=asker,
                          policy_version=engine.version, **kw)  # type: ignore[arg-type]

    try:
        req = msgspec.msgpack.decode(data, type=schemas.ResolveRequest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Resolution(schemas.ResolveReply(error=f"{RULE_SCHEMA}: not a resolve request "
                                               f"({exc})", policy_version=engine.version))
    header, errors = _draft_errors(engine, req.header)
    if header is not None and header.sender != asker:
        errors = [FieldError("header.sender", RULE_SENDER,
                             f"{asker} cannot resolve for {header.sender}")]
    if errors:
        sentence = "; ".join(str(e) for e in errors)
        reply = schemas.ResolveReply(
            error=f"{errors[0].rule}: {sentence}", policy_version=engine.version,
            errors=[schemas.DraftError(e.path, e.rule, e.message) for e in errors])
        mid = _draft_id(req.header)
        key = f"{mid}:{STAGE}:rejected" if mid else (
            f"{hashlib.sha256(data).hexdigest()}:{STAGE}:rejected")
        return Resolution(reply, [(key, event(EventType.REJECTED, message_id=mid,
                                               rule=errors[0].rule, reason=sentence[:2000],
                                               details={"stage": STAGE}))])
    assert header is not None
    # Named recipients are always decided, so a sender who names an auditor or itself
    # is told why, instead of the name silently disappearing.
    targets = sorted(set(header.recipients) | set(engine.candidates(header)))
    decisions = engine.decide_receive(header, targets, now)
    reply = schemas.ResolveReply(
        permitted=[d.recipient for d in decisions if d.allowed],
        refused=[schemas.Refusal(d.recipient, d.rule, d.reason)
                 for d in decisions if not d.allowed],
        policy_version=engine.version,
    )
    events = [
        (f"{header.id}:{STAGE}:refused:{r.recipient}",
         event(EventType.REFUSED, message_id=header.id, counterpart=r.recipient, rule=r.rule,
               reason=r.reason, details={"stage": STAGE, "kind": str(header.kind),
                                         "level": str(header.level)}))
        for r in reply.refused
    ]
    return Resolution(reply, events)


def unresolved(engine: PolicyEngine, header: schemas.Header) -> tuple[str, str] | None:
    """(rule, sentence) when a submitted header's restrictions or audience name what the
    federation does not know. Signed recipients are left to the policy engine, which
    refuses an unknown one by name."""
    errors = header_errors(engine.vocabulary, header, recipients=False)
    if not errors:
        return None
    return errors[0].rule, "; ".join(str(e) for e in errors)


def _draft_id(data: bytes) -> str | None:
    try:
        raw = msgspec.msgpack.decode(data)
    except msgspec.DecodeError:
        return None
    mid = raw.get("id") if isinstance(raw, dict) else None
    return mid if isinstance(mid, str) and re.fullmatch(MESSAGE_ID_PATTERN, mid) else None
