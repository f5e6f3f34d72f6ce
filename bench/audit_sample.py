"""A deterministic, realistic synthetic audit trail (for tests, the demo and benchmarks).

A month of traffic between liaison units on the Central and Western Mediterranean
routes: submissions, deliveries and refusals, acknowledgements (some missing), consent
requests (granted, refused, pending), forwards, declared uses (a few violating the
originator's restrictions), purges (a few missing after expiry), key and policy
changes. Seeded, so the same arguments always give the same events.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from broker.audit.events import AuditEvent
from schemas.events import EventType

AGENCIES: dict[str, str] = {
    "IT-NCB": "IT",
    "IT-GDF": "IT",
    "GR-HCG": "GR",
    "ES-GC": "ES",
    "FR-OCRIEST": "FR",
    "DE-BKA": "DE",
    "LY-BLO": "LY",
    "TN-BLO": "TN",
    "NE-POL": "NE",
    "MA-DGSN": "MA",
    "NG-NAPTIP": "NG",
    "TR-JAN": "TR",
}
RULES = {
    "exclude": "the originator excluded this recipient",
    "release-to": "the recipient is not among those the originator released to",
    "clearance": "the recipient's clearance is below the message's level",
    "no-legal-basis": "no agreement or declared convention covers this exchange",
}
PURPOSES = ("smuggling", "trafficking", "document-fraud", "border-management")
LEVELS = ("UNCLASSIFIED", "RESTRICTED", "CONFIDENTIAL", "SECRET")
KINDS = ("intel_report", "alert", "info_request", "document_verification")
START = datetime(2025, 3, 1, tzinfo=UTC)


def _flags(rng: random.Random) -> dict[str, str]:
    purposes = sorted(rng.sample(PURPOSES, rng.randint(1, 3)))
    return {
        "purposes": ",".join(purposes),
        "no_evidential_use": "true" if rng.random() < 0.6 else "false",
        "no_onward_dissemination": "true" if rng.random() < 0.5 else "false",
    }


def sample_events(
    messages: int = 200, *, seed: int = 7, start: datetime = START, days: int = 30
) -> list[AuditEvent]:
    """About 10 events per message, sorted by time."""
    rng = random.Random(seed)
    broker_ids = ("broker-1", "broker-2")
    policy = "p-" + format(rng.getrandbits(48), "012x")
    out: list[AuditEvent] = []
    ids = list(AGENCIES)

    def ev(t: EventType, at: datetime, actor: str, **kw: object) -> None:
        out.append(AuditEvent(type=t, at=at, broker=rng.choice(broker_ids), actor=actor,
                              **kw))  # type: ignore[arg-type]

    ev(EventType.POLICY_CHANGED, start, "operator", policy_version=policy,
       details={"action": "loaded"})
    for agency in ids:
        ev(EventType.KEY_CHANGED, start + timedelta(minutes=1), agency,
           details={"action": "added", "key_id": format(rng.getrandbits(64), "016x")})

    span = days * 86_400
    for m in range(messages):
        at = start + timedelta(seconds=rng.randrange(3600, span))
        sender = rng.choice(ids)
        mid = f"{at:%Y%m%d}-{m:06d}"
        hh = format(rng.getrandbits(256), "064x")
        if rng.random() < 0.03:
            ev(EventType.REJECTED, at, sender, message_id=mid, rule="schema",
               reason="body.persons[0].documents[0].issuing_state: not an ISO 3166 code")
            continue
        flags = _flags(rng)
        expires = at + timedelta(days=rng.choice((7, 14, 30, 90)))
        base = {
            "kind": rng.choice(KINDS),
            "category": rng.choice("abcdef"),
            "level": rng.choice(LEVELS),
            "origin_country": AGENCIES[sender],
            "expires_at": expires.isoformat(),
            **flags,
        }
        ev(EventType.SUBMITTED, at, sender, message_id=mid, header_hash=hh,
           policy_version=policy, details=base)
        recipients = rng.sample([a for a in ids if a != sender], rng.randint(1, 4))
        for r in recipients:
            t = at + timedelta(milliseconds=rng.randint(5, 900))
            d = {**base, "recipient_country": AGENCIES[r]}
            if rng.random() < 0.15:
                rule = rng.choice(list(RULES))
                ev(EventType.REFUSED, t, sender, message_id=mid, counterpart=r, rule=rule,
                   reason=RULES[rule], header_hash=hh, policy_version=policy, details=d)
                continue
            ev(EventType.DELIVERED, t, sender, message_id=mid, counterpart=r,
               rule="agreement", header_hash=hh, policy_version=policy, details=d)
            t += timedelta(minutes=rng.randint(1, 600))
            if rng.random() < 0.9:
                ev(EventType.ACKNOWLEDGED, t, r, message_id=mid, counterpart=sender,
                   header_hash=hh)
            consent: bool | None = None
            if flags["no_evidential_use"] == "true" and rng.random() < 0.3:
                t += timedelta(hours=rng.randint(1, 24))
                ev(EventType.CONSENT_REQUESTED, t, r, message_id=mid, counterpart=sender,
                   details={"purpose": "judicial-proceedings", "evidential": "true"})
                roll = rng.random()
                if roll < 0.85:
                    t += timedelta(hours=rng.randint(1, 72))
                    consent = roll < 0.6
                    ev(EventType.CONSENT_GRANTED if consent else EventType.CONSENT_REFUSED,
                       t, sender, message_id=mid, counterpart=r,
                       details={"purpose": "judicial-proceedings"})
            if rng.random() < 0.5:
                t += timedelta(hours=rng.randint(1, 48))
                evidential = consent is True or rng.random() < 0.08
                allowed = flags["purposes"].split(",")
                # Mostly within the allowed purposes; the rest are violations to report.
                purpose = rng.choice(allowed) if rng.random() < 0.95 else rng.choice(PURPOSES)
                use = {**d, "purpose": purpose,
                       "evidential": "true" if evidential else "false",
                       "originator": sender}
                if evidential and d["no_evidential_use"] == "true" and consent is False:
                    ev(EventType.USE_REFUSED, t, r, message_id=mid, counterpart=sender,
                       rule="no_evidential_use", reason="the originator refused consent",
                       details=use)
                else:
                    ev(EventType.USE_DECLARED, t, r, message_id=mid, counterpart=sender,
                       details=use)
            if rng.random() < 0.12:
                t += timedelta(hours=rng.randint(1, 48))
                third = rng.choice([a for a in ids if a not in (sender, r)])
                fd = {**d, "originator": sender, "recipient_country": AGENCIES[third]}
                if d["no_onward_dissemination"] == "true":
                    ev(EventType.FORWARD_REFUSED, t, r, message_id=mid, counterpart=third,
                       rule="no_onward_dissemination",
                       reason="onward dissemination needs the originator's consent",
                       details=fd)
                else:
                    ev(EventType.FORWARDED, t, r, message_id=mid, counterpart=third,
                       rule="agreement", header_hash=hh, details=fd)
            if rng.random() < 0.93:
                ev(EventType.PURGED, expires + timedelta(minutes=rng.randint(1, 120)), r,
                   message_id=mid, counterpart=sender, header_hash=hh)
    out.sort(key=lambda e: e.at)
    return out


def iter_sample_events(n: int, *, seed: int = 7) -> Iterator[AuditEvent]:
    """Exactly n events (cycling sample traffic with shifted times) for benchmarks."""
    base = sample_events(500, seed=seed)
    lap = timedelta(days=31)
    i = 0
    while True:
        for e in base:
            if i == n:
                return
            yield AuditEvent(type=e.type, at=e.at + lap * (i // len(base)), broker=e.broker,
                             actor=e.actor, message_id=e.message_id,
                             counterpart=e.counterpart, rule=e.rule, reason=e.reason,
                             header_hash=e.header_hash, policy_version=e.policy_version,
                             details=e.details)
            i += 1
