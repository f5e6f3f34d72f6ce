"""Restrictions fail closed, from the CLI and the SDK, against a real nats-server.

Issue 15, items 1, 2, 5 and 6 (first half), each written as the attack or the
everyday mistake it is, before the fix:
1. a restriction naming something the federation does not know (a country name, a
   lower-case or alpha-3 code, a misspelt group) is refused before sealing, naming the
   field, the value and the nearest valid values; the broker refuses it too when a
   hostile SDK skips the check;
2. TLP:RED and TLP:AMBER imply no onward dissemination for every decision, so a
   forward without consent is refused; RED with an audience is explained, not a crash;
5. a send that reaches nobody says why (the broker's rule and sentence) and exits
   non-zero;
6. refusals shown to the sender when it resolves are in the audit log.

The CLI runs in a thread (each command runs its own event loop) against the `stack`
fixture's nats-server and broker, as `orcon` does against `orcon dev`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner, Result

import schemas
from broker.hosting.stack import DevStack
from clients.cli.main import app
from clients.sdk.client import AgencyClient
from clients.sdk.holder import ForwardRefused, Holder
from keys.directory import FederationRoot
from keys.records import Revocation, RevocationList
from schemas import TLP, Category, Level, Restrictions, examples
from schemas.events import EventType

HolderFactory = Callable[[str], Awaitable[Holder]]
AgencyFactory = Callable[[str], Awaitable[Any]]


def _body(tmp_path: Path) -> Path:
    path = tmp_path / "report.json"
    path.write_bytes(msgspec.json.encode(examples.mekong_route_report()))
    return path


async def _send(stack: DevStack, tmp_path: Path, *args: str,
                as_agency: str = "TH-AHTD") -> Result:
    argv = ["send", "-d", str(stack.data_dir), "--as", as_agency, "--body",
            str(_body(tmp_path)), "--category", "a", "--level", "CONFIDENTIAL", *args]
    return await asyncio.to_thread(CliRunner().invoke, app, argv)


def _clean_failure(result: Result) -> str:
    """A refusal is an error message and a non-zero exit, never a traceback."""
    assert result.exit_code != 0, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return " ".join(result.output.split())  # rich wraps long lines


async def _received(client: AgencyClient) -> list[str]:
    batch = await client.inbox(timeout=0.7)
    return [m.header.id for m in batch.messages]


# ---- 1. fail closed --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "field", "value", "nearest"),
    [
        (["--audience", "COMMIT", "--exclude", "MYANMAR"], "exclude", "MYANMAR", "MM"),
        (["--audience", "COMMIT", "--exclude", "mm"], "exclude", "mm", "MM"),
        (["--release-to", "KHM", "--audience", "COMMIT"], "release_to", "KHM", "KH"),
        (["--audience", "COMMITT"], "audience", "COMMITT", "COMMIT"),
        (["--to", "KH-AHTJ"], "recipients", "KH-AHTJ", "KH-AHTJP"),
    ],
)
async def test_unresolvable_name_refuses_the_message_before_sealing(
        stack: DevStack, agency: AgencyFactory, tmp_path: Path,
        args: list[str], field: str, value: str, nearest: str) -> None:
    mm, kh = await agency("MM-ATIPD"), await agency("KH-AHTJP")
    result = await _send(stack, tmp_path, *args)
    text = _clean_failure(result)
    assert field in text and f"'{value}'" in text, text
    assert nearest in text.split("did you mean", 1)[-1], text
    assert re.search(r"message [0-9A-Z]{26}", text) is None  # nothing sealed or submitted
    assert await _received(mm) == [] and await _received(kh) == []


async def test_sdk_refuses_an_unresolvable_restriction_before_sealing(
        agency: AgencyFactory) -> None:
    th = await agency("TH-AHTD")
    with pytest.raises(schemas.SchemaError) as exc:
        await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                      level=Level.CONFIDENTIAL, audience=["COMMIT"],
                      restrictions=Restrictions(exclude=["MYANMAR"]))
    (err,) = exc.value.errors
    assert err.path == "header.restrictions.exclude[0]"
    assert err.rule == "restriction.unresolved"
    assert "'MYANMAR'" in err.message and "MM" in err.message
    assert await th.outcomes(timeout=0.5) == []  # nothing reached the broker's queue


async def test_broker_rejects_an_unresolvable_restriction_from_a_hostile_sdk(
        stack: DevStack, agency: AgencyFactory) -> None:
    """The SDK check is skipped (resolve=False, sealed to everyone): the broker refuses
    the whole message with a typed rejection naming the field, and delivers nothing."""
    th, mm = await agency("TH-AHTD"), await agency("MM-ATIPD")
    sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.CONFIDENTIAL, to=["KH-AHTJP", "MM-ATIPD"],
                         restrictions=Restrictions(exclude=["MYANMAR"]), resolve=False)
    assert sent.submitted
    outcome = await th.wait_outcome(sent.header.id)
    assert outcome.status == "rejected" and outcome.delivered == []
    assert outcome.error is not None
    assert outcome.error.startswith("restriction.unresolved")
    assert "header.restrictions.exclude[0]" in outcome.error and "MYANMAR" in outcome.error
    assert await _received(mm) == []


# ---- 2. TLP presets in every decision --------------------------------------------------


async def test_tlp_red_with_an_audience_is_explained(stack: DevStack, tmp_path: Path) -> None:
    for args in (["--tlp", "RED", "--audience", "COMMIT"],
                 ["--tlp", "RED", "--audience", "COMMIT", "--to", "KH-AHTJP"]):
        text = _clean_failure(await _send(stack, tmp_path, *args))
        assert "TLP:RED" in text and "named recipients only" in text, text
        assert "audience" in text


@pytest.mark.parametrize("label", [TLP.RED, TLP.AMBER, TLP.AMBER_STRICT])
async def test_forward_under_tlp_without_consent_is_refused(
        stack: DevStack, holder: HolderFactory, agency: AgencyFactory, sync_until: Any,
        label: TLP) -> None:
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    vn = await agency("VN-MPS")
    info = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.CONFIDENTIAL, to=["KH-AHTJP"],
                         restrictions=Restrictions(tlp=label))
    await sync_until(kh, lambda r: any(x.id == info.id for x in r.new))
    # The broker decides, not only the SDK: the holder's local check plays no part.
    with pytest.raises(ForwardRefused) as exc:
        await kh.forward(info.id, "VN-MPS")
    assert exc.value.rule == "restriction.no_onward_dissemination"
    assert await _received(vn) == []


async def test_cli_forward_of_tlp_red_is_refused(
        stack: DevStack, holder: HolderFactory, tmp_path: Path) -> None:
    th = await holder("TH-AHTD")
    info = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.CONFIDENTIAL, to=["KH-AHTJP"],
                         restrictions=Restrictions(tlp=TLP.RED))
    result = await asyncio.to_thread(
        CliRunner().invoke, app,
        ["forward", info.id, "--to", "VN-MPS", "-d", str(stack.data_dir), "--as", "KH-AHTJP"])
    text = _clean_failure(result)
    assert "restriction.no_onward_dissemination" in text, text


# ---- 5. the sender is told why --------------------------------------------------------


async def test_send_with_a_revoked_key_exits_non_zero_with_the_brokers_reason(
        stack: DevStack, tmp_path: Path) -> None:
    revoked_at = datetime.now(UTC)
    root = FederationRoot.load(stack.data_dir / "keys" / "root.key", stack.passphrase())
    th = await AgencyClient.connect(stack.connection, "TH-AHTD",  # type: ignore[arg-type]
                                    passphrase=stack.passphrase())
    try:
        key_id = th.identity.signing_key_id
    finally:
        await th.close()
    signed = root.sign_revocations(RevocationList(
        serial=1, issued_at=revoked_at, revocations=[Revocation(
            key_id=key_id, agency="TH-AHTD", revoked_at=revoked_at, reason="key compromise")]))
    for b in stack.brokers:
        b.directory.set_revocations(signed)
    await asyncio.sleep(0.01)  # created_at strictly after the revocation time
    text = _clean_failure(await _send(stack, tmp_path, "--to", "KH-AHTJP"))
    assert "sender.key" in text and "revoked" in text, text
    assert "delivered to: nobody" not in text


async def test_use_rejected_by_the_broker_is_not_reported_as_declared(
        stack: DevStack, holder: HolderFactory) -> None:
    """After the holder's key is revoked, its use declaration is rejected (sender.key):
    `orcon use` says so and exits non-zero instead of printing "use declared"."""
    th = await holder("TH-AHTD")
    info = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.CONFIDENTIAL, to=["KH-AHTJP"])
    as_kh = ["-d", str(stack.data_dir), "--as", "KH-AHTJP"]
    first = await asyncio.to_thread(CliRunner().invoke, app, [
        "use", info.id, "--purpose", "investigation", *as_kh])
    assert first.exit_code == 0, first.output
    kh = await AgencyClient.connect(stack.connection, "KH-AHTJP",  # type: ignore[arg-type]
                                    passphrase=stack.passphrase())
    key_id = kh.identity.signing_key_id
    await kh.close()
    revoked_at = datetime.now(UTC)
    root = FederationRoot.load(stack.data_dir / "keys" / "root.key", stack.passphrase())
    signed = root.sign_revocations(RevocationList(
        serial=1, issued_at=revoked_at, revocations=[Revocation(
            key_id=key_id, agency="KH-AHTJP", revoked_at=revoked_at, reason="key compromise")]))
    for b in stack.brokers:
        b.directory.set_revocations(signed)
    await asyncio.sleep(0.01)
    again = await asyncio.to_thread(CliRunner().invoke, app, [
        "use", info.id, "--purpose", "investigation", *as_kh])
    assert again.exit_code != 0, again.output
    assert "sender.key" in again.output and "use declared" not in again.output


async def test_send_that_reaches_nobody_exits_non_zero_with_each_rule(
        stack: DevStack, tmp_path: Path) -> None:
    # LA-MPS is cleared RESTRICTED only; the message is CONFIDENTIAL.
    text = _clean_failure(await _send(stack, tmp_path, "--to", "LA-MPS"))
    assert "restriction.clearance" in text and "LA-MPS" in text, text


# ---- 6. refusals shown at resolve time are logged --------------------------------------


async def test_refusals_shown_at_resolve_time_are_audited(
        stack: DevStack, agency: AgencyFactory, audit: Any) -> None:
    th = await agency("TH-AHTD")
    sent = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.CONFIDENTIAL, to=["KH-AHTJP", "LA-MPS"])
    assert sent.sealed_to == ["KH-AHTJP"]
    assert [r.recipient for r in sent.refused] == ["LA-MPS"]

    def done(evs: list[Any]) -> bool:
        return any(e.type == EventType.REFUSED and e.counterpart == "LA-MPS"
                   and e.message_id == sent.header.id for e in evs)

    events = [e for e in await audit(stack, done) if e.message_id == sent.header.id]
    refused = [e for e in events if e.type == EventType.REFUSED]
    assert [(e.counterpart, e.rule, e.details.get("stage")) for e in refused] == [
        ("LA-MPS", "restriction.clearance", "resolve")]
    assert refused[0].actor == "TH-AHTD" and "RESTRICTED" in (refused[0].reason or "")


@pytest.mark.parametrize(
    ("restrictions", "path", "nearest"),
    [
        (Restrictions(purposes=["smuggling of migrants"]),  # type: ignore[list-item]
         "header.restrictions.purposes[0]", "smuggling_of_migrants"),
        (Restrictions(tlp="amber+strict"),  # type: ignore[arg-type]
         "header.restrictions.tlp", "AMBER+STRICT"),
    ],
)
async def test_sdk_refuses_a_code_orcon_does_not_know(
        agency: AgencyFactory, restrictions: Restrictions, path: str, nearest: str) -> None:
    th = await agency("TH-AHTD")
    with pytest.raises(schemas.SchemaError) as exc:
        await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                      level=Level.CONFIDENTIAL, to=["KH-AHTJP"], restrictions=restrictions)
    (err,) = exc.value.errors
    assert (err.path, err.rule) == (path, "restriction.unresolved")
    assert err.message.endswith(f"did you mean {nearest}?"), err.message


async def test_forwarder_cannot_add_an_unresolvable_exclusion(
        holder: HolderFactory, agency: AgencyFactory, sync_until: Any) -> None:
    """A forwarder may tighten, but an exclusion naming nobody tightens nothing: the
    broker refuses the forward rather than pass on a restriction that reads as one."""
    th, kh = await holder("TH-AHTD"), await holder("KH-AHTJP")
    vn = await agency("VN-MPS")
    info = await th.send(examples.mekong_route_report(), category=Category.ROUTES,
                         level=Level.CONFIDENTIAL, to=["KH-AHTJP"])
    await sync_until(kh, lambda r: any(x.id == info.id for x in r.new))
    with pytest.raises(ForwardRefused) as exc:
        await kh.forward(info.id, "VN-MPS", restrictions=Restrictions(exclude=["MYANMAR"]))
    assert exc.value.rule == "restriction.unresolved"
    assert "MYANMAR" in exc.value.reason and "MM" in exc.value.reason
    assert await _received(vn) == []
