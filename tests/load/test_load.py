"""Load: many messages among 50 agencies with random restrictions.

Real nats-server, two `orcon broker` processes, 50 agencies (random countries,
clearances, groups; a default agreement for categories a-d, a regional one for e-f,
none for "other"), each message from a random agency to 1-4 named agencies, sealed to
all of them (`resolve=False`: the broker decides), with a random level and random
release_to / exclude. Afterwards:

- zero misroutes: every recipient received exactly the messages that the reference
  policy model (`policies.reference`) permits it, nothing else;
- zero losses: every permitted delivery arrived, exactly once;
- the audit log, fetched with the auditor's credentials, verifies offline and records
  one `delivered` event per delivery and one `refused` event per refusal.

CI runs ORCON_LOAD_N (default 3,000) messages; ORCON_SLOW=1 runs 100,000 (`make slow`).
The figures (messages, deliveries, seconds) are printed (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

import schemas
from broker.audit.events import decode_record
from broker.audit.store import iter_entries
from broker.audit.verify import verify_bundle
from broker.hosting.stack import DevStack
from clients.sdk.auditor import fetch_bundle
from clients.sdk.client import AgencyClient
from keys.envelope import seal
from policies import reference
from policies.federation import Federation, load_federation
from schemas import Category, Level, Restrictions, examples
from schemas.events import EventType
from tests.support.harness import (
    BrokerProcess,
    Collected,
    collect,
    env_int,
    publish_all,
    slow,
    submit_state,
)

N = 100_000 if slow() else env_int("ORCON_LOAD_N", 3_000)
AGENCIES = 50
COUNTRIES = ["KH", "TH", "LA", "VN", "MM", "CN", "AU", "MY", "ID", "PH"]
GROUPS = ["GRP-EAST", "GRP-WEST", "GRP-SEA"]


def write_federation(path: Path, rng: random.Random) -> list[str]:
    ids = [f"AG-{i:02d}" for i in range(AGENCIES)]
    lines = ['name = "load test federation"']
    for aid in ids:
        groups = rng.sample(GROUPS, rng.randint(0, 2))
        lines += [
            "[[agencies]]", f'id = "{aid}"', f'name = "{aid}"',
            f'country = "{rng.choice(COUNTRIES)}"', 'type = "police"', 'roles = ["liaison"]',
            f'clearance = "{rng.choice(["RESTRICTED", "CONFIDENTIAL", "SECRET", "SECRET"])}"',
            f"groups = {groups!r}".replace("'", '"'),
        ]
    lines += ['[[agencies]]', 'id = "XX-AUDIT"', 'name = "auditor"', 'country = "CH"',
              'type = "audit"', 'roles = ["auditor"]', 'clearance = "SECRET"']
    for g in GROUPS:
        lines += ["[[groups]]", f'id = "{g}"', f'name = "{g}"', "members = []"]
    lines += [
        "[[agreements]]", 'id = "GLOBAL"', 'title = "all parties"', "default_basis = true",
        'categories = ["a", "b", "c", "d"]', "valid_from = 2000-01-01", 'legal_basis = "x"',
        "[[agreements]]", 'id = "SEA"', 'title = "regional"', 'parties = ["GRP-SEA"]',
        'categories = ["e", "f"]', "valid_from = 2000-01-01", 'legal_basis = "x"',
    ]
    path.write_text("\n".join(lines) + "\n")
    return ids


def restrictions(rng: random.Random) -> Restrictions:
    names = COUNTRIES + GROUPS
    release = rng.sample(names, rng.randint(1, 3)) if rng.random() < 0.3 else []
    return Restrictions(
        release_to=release,
        exclude=rng.sample([n for n in names if n not in release], 1)
        if rng.random() < 0.3 else [],
        no_onward_dissemination=rng.random() < 0.5,
    )


@pytest.mark.timeout(7200 if slow() else 240)
async def test_load_many_messages_among_50_agencies(tmp_path: Path) -> None:
    rng = random.Random(20250601)
    ids = write_federation(tmp_path / "federation.toml", rng)
    fed: Federation = load_federation(tmp_path / "federation.toml")
    data = tmp_path / "stack"
    async with DevStack(data, tmp_path / "federation.toml", brokers=0, fast_kdf=True,
                        ack_wait_s=10.0, head_interval=2.0) as stack:
        assert stack.connection is not None
        procs = [BrokerProcess(data, "b1"), BrokerProcess(data, "b2")]
        clients: dict[str, AgencyClient] = {}
        try:
            for p in procs:
                await asyncio.to_thread(p.start)
            for aid in ids:
                clients[aid] = await AgencyClient.connect(stack.connection, aid,
                                                          passphrase=stack.passphrase())
            t_seal = time.monotonic()
            now = datetime.now(UTC)
            directory = clients[ids[0]].directory
            keys = {aid: directory.recipients_for(aid, now) for aid in ids}
            body = examples.mekong_route_report()
            body_bytes = schemas.encode(body)
            by_sender: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
            expected: dict[str, set[str]] = defaultdict(set)  # recipient -> message ids
            refusals = 0
            for _ in range(N):
                sender = rng.choice(ids)
                to = rng.sample([a for a in ids if a != sender], rng.randint(1, 4))
                c = clients[sender]
                header = c.draft(body, category=rng.choice(list(Category)),
                                 level=rng.choice(list(Level)),
                                 restrictions=restrictions(rng), to=to)
                for r in header.recipients:
                    if reference.decide(fed, "receive", header, r, now).allowed:
                        expected[r].add(header.id)
                    else:
                        refusals += 1
                env = seal(schemas.encode(header), body_bytes,
                           [k for a in header.recipients for k in keys[a]], c.identity)
                by_sender[sender].append((header.id, schemas.encode_envelope(env)))
            deliveries = sum(len(v) for v in expected.values())
            seal_s = time.monotonic() - t_seal

            started = time.monotonic()
            publishing = asyncio.gather(*(
                publish_all(clients[a].js, a, items, window=64, deadline_s=600)
                for a, items in by_sender.items()))
            got = {aid: Collected() for aid in ids}
            budget = 1800 if slow() else 60
            await asyncio.gather(*(
                collect(clients[a], expected[a], got[a], deadline_s=budget) for a in ids))
            await publishing
            # Let the brokers finish (refusal-only messages deliver nothing to wait for).
            ops = await stack.broker_connection("observer")
            try:
                for _ in range(600):
                    pending, ack_pending, _ = await submit_state(ops.jetstream())
                    if pending == ack_pending == 0:
                        break
                    await asyncio.sleep(0.1)
            finally:
                await ops.close()
            elapsed = time.monotonic() - started
            # Anything further would be a misroute or a duplicate: drain once more.
            lates = await asyncio.gather(*(clients[a].inbox(limit=500, timeout=1.0)
                                           for a in ids))
            for a, late in zip(ids, lates, strict=True):
                got[a].messages += late.messages
                got[a].rejected += len(late.rejected)

            misroutes = {a: set(got[a].ids) - expected[a] for a in ids}
            losses = {a: expected[a] - set(got[a].ids) for a in ids}
            doubles = {a: len(got[a].ids) - len(set(got[a].ids)) for a in ids}
            if any(misroutes.values()) or any(losses.values()):
                outcomes = {}
                for c in clients.values():  # explain the failure with the brokers' word
                    while batch := await c.outcomes(limit=1000, timeout=0.5):
                        outcomes.update({o.message_id: o for o in batch})
                lost = [(mid, a, outcomes.get(mid)) for a, v in losses.items() for mid in v]
                wrong = [(mid, a, outcomes.get(mid)) for a, v in misroutes.items() for mid in v]
                raise AssertionError(f"losses: {lost[:5]} ({len(lost)}); "
                                     f"misroutes: {wrong[:5]} ({len(wrong)})")
            assert sum(doubles.values()) == 0, "duplicates handed to applications"
            assert sum(g.rejected for g in got.values()) == 0
            assert deliveries > N // 2 and refusals > N // 10, "restrictions too weak/strong"

            t_audit = time.monotonic()
            assert stack.audit is not None
            # submitted + one event per named recipient, per message
            want_events = N + deliveries + refusals
            for _ in range(1200):
                if stack.audit.size >= want_events:
                    break
                await asyncio.sleep(0.1)
            await fetch_bundle(stack.connection, "XX-AUDIT", tmp_path / "bundle")
            report = verify_bundle(tmp_path / "bundle")
            assert report.ok, report.summary()
            types = Counter(decode_record(e).event.type for e in iter_entries(tmp_path / "bundle"))
            assert types[EventType.SUBMITTED] == N
            assert types[EventType.DELIVERED] == deliveries
            assert types[EventType.REFUSED] == refusals
            audit_s = time.monotonic() - t_audit
            print(f"\nload: {N} messages, {AGENCIES} agencies, {deliveries} deliveries, "
                  f"{refusals} refusals; sealing {seal_s:.1f} s, routing+delivery "
                  f"{elapsed:.1f} s ({N / elapsed:.0f} msg/s), audit fetch+verify "
                  f"{audit_s:.1f} s ({report.entries} entries); 0 misroutes, 0 losses")
        finally:
            for c in clients.values():
                await c.close()
            await asyncio.gather(*(asyncio.to_thread(p.stop) for p in procs))
