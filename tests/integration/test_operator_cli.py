"""Operator workflows from the CLI against a running federation with TLS (the default
of `orcon dev`): each change is one command, signed by the root where the federation
must vouch for it, published, in force in the brokers within seconds, and audited.

The commands run through typer's CliRunner in a worker thread (they call asyncio.run)
against a real nats-server and broker; connection.json lists a dead node before the
live one, so the commands must use the cluster URL list, not a single URL.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner, Result

from broker.audit.events import AuditEvent, decode_record
from broker.hosting.stack import DevStack
from clients.cli.main import app
from clients.sdk.client import AgencyClient
from keys.directory import FederationRoot
from keys.keyfile import load_identity
from schemas import Category, Level, examples
from schemas.events import EventType
from tests.support.paths import SAMPLE_FEDERATION as SAMPLE
from transport.connection import connect_nats, write_connection

runner = CliRunner()

TH_ID_AGREEMENT = '''

[[agreements]]
id = "ID-TH-MOU-2026"
title = "Indonesia-Thailand cooperation against trafficking (sample)"
parties = ["ID", "TH"]
categories = ["a", "b", "c", "d"]
valid_from = 2026-01-01
legal_basis = "Bilateral memorandum (sample)"
'''


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def tls_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DevStack]:
    async with DevStack(tmp_path / "stack", SAMPLE, fast_kdf=True, tls=True,
                        head_interval=0.2) as stack:
        assert stack.connection is not None and stack.connection.url.startswith("tls://")
        # A cluster URL list whose first node is down: only a dial that splits the list
        # (and brings the CA) reaches the live node.
        dead = f"tls://127.0.0.1:{_dead_port()}"
        write_connection(stack.data_dir, msgspec.structs.replace(
            stack.connection, url=f"{dead},{stack.connection.url}"))
        monkeypatch.setenv("ORCON_PASSPHRASE", stack.passphrase())
        yield stack


async def orcon(*args: str | Path) -> Result:
    return await asyncio.to_thread(runner.invoke, app, [str(a) for a in args])


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def _audit(stack: DevStack, want: Callable[[list[AuditEvent]], bool]) -> list[AuditEvent]:
    nc = await stack.broker_connection("audit-read")
    try:
        js = nc.jetstream()
        events: list[AuditEvent] = []
        for _ in range(100):
            last = (await js.stream_info("AUDIT")).state.last_seq
            events = [decode_record((await js.get_msg("AUDIT", q)).data or b"").event
                      for q in range(1, last + 1)]
            if want(events):
                return events
            await asyncio.sleep(0.1)
        raise AssertionError(f"audit log never matched; has {[e.type for e in events]}")
    finally:
        await nc.close()


def _registry_changes(events: list[AuditEvent]) -> list[AuditEvent]:
    return [e for e in events if e.type == EventType.POLICY_CHANGED
            and e.details.get("action") == "registry"]


def _actions(events: list[AuditEvent], type_: EventType) -> list[tuple[str, str | None]]:
    return [(e.actor, e.details.get("action")) for e in events if e.type == type_]


async def test_publish_commands_work_over_tls_and_cluster_urls(tls_stack: DevStack) -> None:
    d, keys = tls_stack.data_dir, tls_stack.data_dir / "keys"
    res = await orcon("keys", "publish", "-d", d)
    assert res.exit_code == 0, res.output
    assert "directory published" in res.output

    version = tls_stack.brokers[0].engine.version
    edited = d.parent / "edited.toml"
    edited.write_text((d / "federation.toml").read_text() + TH_ID_AGREEMENT.replace(
        '["ID", "TH"]', '["AU", "TH"]').replace("ID-TH", "AU-TH2"))
    res = await orcon("policy", "publish", "-d", d, "--federation", edited,
                      "--root", keys / "root.key")
    assert res.exit_code == 0, res.output
    await _until(lambda: tls_stack.brokers[0].engine.version != version)
    assert (d / "federation.toml").read_bytes() == edited.read_bytes()

    # Offline root: sign on one machine, publish the signed file on another.
    signed = d.parent / "registry.signed"
    again = d.parent / "again.toml"
    again.write_text(edited.read_text() + "\n# reviewed again\n")
    res = await orcon("policy", "sign", "--federation", again, "--root", keys / "root.key",
                      "--out", signed)
    assert res.exit_code == 0, res.output
    res = await orcon("policy", "publish", "-d", d, "--signed", signed)
    assert res.exit_code == 0, res.output
    # Publishing the same signed record twice is not a rollback.
    res = await orcon("policy", "publish", "-d", d, "--signed", signed)
    assert res.exit_code == 0, res.output
    events = await _audit(tls_stack, lambda ev: sum(
        1 for e in ev if e.type == EventType.POLICY_CHANGED
        and e.details.get("action") == "registry") >= 2)
    serials = [int(e.details["serial"]) for e in events
               if e.type == EventType.POLICY_CHANGED and e.details.get("action") == "registry"]
    assert serials == sorted(serials) and len(set(serials)) == len(serials)

    # A registry signed by another root is refused before it reaches the bucket.
    other = d.parent / "other-root.key"
    FederationRoot.generate().save(other, tls_stack.passphrase(), fast=True)
    res = await orcon("policy", "publish", "-d", d, "--federation", edited, "--root", other)
    assert res.exit_code != 0 and "not the federation's pinned root" in res.output


async def test_older_signed_registry_is_refused_by_publish(tls_stack: DevStack) -> None:
    d, root = tls_stack.data_dir, tls_stack.data_dir / "keys" / "root.key"
    old, new = d.parent / "old.signed", d.parent / "new.signed"
    res = await orcon("policy", "sign", "--federation", d / "federation.toml", "--root", root,
                      "--out", old)
    assert res.exit_code == 0, res.output
    await asyncio.sleep(0.01)  # serials are milliseconds of the signing time
    res = await orcon("policy", "sign", "--federation", d / "federation.toml", "--root", root,
                      "--out", new)
    assert res.exit_code == 0, res.output
    assert (await orcon("policy", "publish", "-d", d, "--signed", new)).exit_code == 0
    res = await orcon("policy", "publish", "-d", d, "--signed", old)
    assert res.exit_code != 0 and "not newer" in res.output


async def test_rotation_and_revocation_are_one_command_each(tls_stack: DevStack) -> None:
    d, keys = tls_stack.data_dir, tls_stack.data_dir / "keys"
    assert tls_stack.connection is not None
    old = load_identity(keys / "KH-AHTJP.key", tls_stack.passphrase())
    old_kem = old.kem_keys[0].key_id

    res = await orcon("keys", "rotate", "--key", keys / "KH-AHTJP.key", "--data-dir", d,
                      "--root", keys / "root.key", "--new-signing-key", "--fast-kdf")
    assert res.exit_code == 0, res.output
    assert "directory published" in res.output
    rotated = load_identity(keys / "KH-AHTJP.key", tls_stack.passphrase())
    new_kem = next(k.key_id for k in rotated.kem_keys if k.key_id != old_kem)
    now = datetime.now(UTC)
    await _until(lambda: [r.key_id for r in
                          tls_stack.brokers[0].directory.recipients_for("KH-AHTJP", now)]
                 == [new_kem])

    # A message sealed now goes to the new key, and the rotated identity opens it.
    th = await AgencyClient.connect(tls_stack.connection, "TH-AHTD",
                                    passphrase=tls_stack.passphrase())
    kh = await AgencyClient.connect(tls_stack.connection, "KH-AHTJP",
                                    passphrase=tls_stack.passphrase())
    try:
        sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                             level=Level.RESTRICTED, to=["KH-AHTJP"])
        assert [r.key_id for r in th.directory.recipients_for("KH-AHTJP", now)] == [new_kem]
        assert (await th.wait_outcome(sent.header.id)).delivered == ["KH-AHTJP"]
        batch = await kh.inbox(timeout=5)
        assert [m.header.id for m in batch.messages] == [sent.header.id]

        # The old signing key is revoked, published, and refused by the broker.
        res = await orcon("keys", "revoke", "--root", keys / "root.key", "--data-dir", d,
                          "--key-id", old.signing_key_id, "--reason", "superseded")
        assert res.exit_code == 0, res.output
        await _until(lambda: tls_stack.brokers[0].directory.revocation(old.signing_key_id)
                     is not None)
    finally:
        await th.close()
        await kh.close()

    events = await _audit(tls_stack, lambda ev: ("KH-AHTJP", "revoked")
                          in _actions(ev, EventType.KEY_CHANGED))
    acts = _actions(events, EventType.KEY_CHANGED)
    assert ("KH-AHTJP", "added") in acts and ("KH-AHTJP", "entry") in acts


async def test_new_country_agency_and_agreement_from_the_cli(tls_stack: DevStack) -> None:
    d, keys = tls_stack.data_dir, tls_stack.data_dir / "keys"
    assert tls_stack.connection is not None
    key = d.parent / "ID-POLRI.key"
    res = await orcon("keys", "generate", "--agency", "ID-POLRI", "--out", key, "--fast-kdf")
    assert res.exit_code == 0, res.output
    public = d.parent / "ID-POLRI.pub"
    res = await orcon("keys", "export", "--key", key, "--out", public)
    assert res.exit_code == 0, res.output

    # Indonesia is new to the federation: its first agency registers the country.
    res = await orcon("policy", "add-agency", "-d", d, "--root", keys / "root.key",
                      "--id", "ID-POLRI", "--name", "Indonesian National Police (sample)",
                      "--country", "ID", "--type", "police", "--clearance", "CONFIDENTIAL",
                      "--role", "liaison", "--public", public)
    assert res.exit_code == 0, res.output
    broker = tls_stack.brokers[0]
    await _until(lambda: broker.engine.federation.get_agency("ID-POLRI") is not None
                 and "ID-POLRI" in broker.directory.agencies())

    th = await AgencyClient.connect(tls_stack.connection, "TH-AHTD",
                                    passphrase=tls_stack.passphrase())
    th.directory_max_age = 0.0
    try:
        before = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                               level=Level.RESTRICTED, to=["ID-POLRI"])
        assert [r.rule for r in before.refused] == ["default.no-basis"]

        # The agreement: the registry in force, plus one table, in one command.
        edited = d.parent / "with-agreement.toml"
        edited.write_text((d / "federation.toml").read_text() + TH_ID_AGREEMENT)
        version = broker.engine.version
        res = await orcon("policy", "publish", "-d", d, "--federation", edited,
                          "--root", keys / "root.key")
        assert res.exit_code == 0, res.output
        await _until(lambda: broker.engine.version != version)

        sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                             level=Level.RESTRICTED, to=["ID-POLRI"])
        assert sent.refused == []
        assert (await th.wait_outcome(sent.header.id)).delivered == ["ID-POLRI"]
    finally:
        await th.close()

    # The new agency opens it. Its NATS credentials are issued by the server's
    # configuration (not by these commands), so it reads here over the service one.
    nc = await connect_nats(tls_stack.connection, "ID-POLRI",
                            str(d / "creds" / "orcon-broker.nk"))
    ident = load_identity(key, tls_stack.passphrase())
    idc = AgencyClient(nc, ident, broker.directory)
    try:
        batch = await idc.inbox(timeout=5)
        assert [m.header.id for m in batch.messages] == [sent.header.id]
    finally:
        await idc.close()

    # Both registry changes, not only the key: the brokers audit each as they apply it.
    events = await _audit(tls_stack, lambda ev: ("ID-POLRI", "added")
                          in _actions(ev, EventType.KEY_CHANGED)
                          and len(_registry_changes(ev)) >= 2)
    registry = _registry_changes(events)
    assert len(registry) == 2  # the agency, then the agreement

    res = await orcon("policy", "add-agency", "-d", d, "--root", keys / "root.key",
                      "--id", "ID-POLRI", "--name", "again", "--country", "ID",
                      "--type", "police", "--clearance", "CONFIDENTIAL", "--role", "liaison",
                      "--key", key)
    assert res.exit_code != 0 and "ID-POLRI" in res.output and "already defined" in res.output
