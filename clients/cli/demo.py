"""`orcon demo`: a scripted exchange in the sample COMMIT federation, on an embedded
nats-server, with a transcript a person can follow. Every component is real."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.rule import Rule

import schemas
from broker.hosting.stack import DevStack, default_federation
from clients.cli.render import message_panel, refusals_table
from clients.sdk.client import AgencyClient, Sent
from schemas import Category, Level, Restrictions, examples
from transport import subjects as s
from transport.connection import Connection, connect_nats


class DemoFailed(RuntimeError):
    pass


async def run_demo(console: Console, data_dir: Path | None = None) -> dict[str, int]:
    if data_dir is not None:
        return await _run(console, data_dir)
    with tempfile.TemporaryDirectory(prefix="orcon-demo-") as tmp:
        return await _run(console, Path(tmp))


async def _run(console: Console, data_dir: Path) -> dict[str, int]:
    counts = {"delivered": 0, "refused": 0, "opened": 0}
    console.print(Rule("orcon demo: the COMMIT sample federation"))
    console.print(f"data directory: {data_dir}")
    async with DevStack(data_dir, default_federation(), fast_kdf=True, tls=True) as stack:
        assert stack.connection is not None and stack.server is not None
        conn = stack.connection
        console.print(f"embedded nats-server {stack.url} (TLS, JetStream, file storage), "
                      f"1 broker, policy version {stack.brokers[0].engine.version}")
        passphrase = stack.passphrase()
        clients = {
            a: await AgencyClient.connect(conn, a, passphrase=passphrase)
            for a in ("TH-AHTD", "KH-AHTJP", "VN-MPS", "LA-MPS", "MM-ATIPD", "AU-AFP-LO",
                      "CN-MPS")
        }
        try:
            now = datetime.now(UTC)
            # 1. A Thai report on a Mekong route to the COMMIT partners, excluding Myanmar.
            console.print(Rule("1. TH-AHTD reports a smuggling route to the COMMIT partners"))
            sent = await clients["TH-AHTD"].send(
                examples.mekong_route_report(),
                category=Category.ROUTES,
                level=Level.CONFIDENTIAL,
                restrictions=Restrictions(
                    exclude=["MM"],
                    no_onward_dissemination=True,
                    no_evidential_use=True,
                    expires_at=now + timedelta(days=90),
                ),
                audience=["COMMIT"],
                to=["XX-AUDIT"],
            )
            await _show_outcome(console, clients["TH-AHTD"], sent, counts)

            # 2. An Australian liaison report to China and Thailand: no basis with China.
            console.print(Rule("2. AU-AFP-LO shares a document-fraud lead with CN-MPS and TH-AHTD"))
            sent2 = await clients["AU-AFP-LO"].send(
                examples.forged_passport_ring(),
                category=Category.DOCUMENTS,
                level=Level.RESTRICTED,
                restrictions=Restrictions(purposes=[schemas.Purpose.DOCUMENT_FRAUD]),
                to=["CN-MPS", "TH-AHTD"],
            )
            await _show_outcome(console, clients["AU-AFP-LO"], sent2, counts)

            # 3. A sender that skips resolve and seals to an excluded agency anyway: the
            #    broker re-checks and drops the stanza.
            console.print(Rule("3. TH-AHTD seals directly to MM-ATIPD despite exclude = MM"))
            sent3 = await clients["TH-AHTD"].send(
                examples.mekong_route_report(),
                category=Category.ROUTES,
                level=Level.RESTRICTED,
                restrictions=Restrictions(exclude=["MM"]),
                to=["KH-AHTJP", "MM-ATIPD"],
                resolve=False,
            )
            await _show_outcome(console, clients["TH-AHTD"], sent3, counts)

            # 4. Recipients open their inboxes.
            console.print(Rule("4. Recipients open their inboxes"))
            for agency in ("KH-AHTJP", "VN-MPS", "TH-AHTD", "LA-MPS", "MM-ATIPD", "CN-MPS"):
                batch = await clients[agency].inbox(timeout=1.0)
                console.print(f"[bold]{agency}[/]: {len(batch.messages)} message(s), "
                              f"{len(batch.rejected)} rejected")
                for msg in batch.messages:
                    counts["opened"] += 1
                    if agency == "KH-AHTJP":
                        console.print(message_panel(msg.header, msg.body, compact=True))
            # 5. The excluded agency tries to read Cambodia's deliveries directly.
            console.print(Rule("5. MM-ATIPD tries to read KH-AHTJP's deliveries itself"))
            denied = await _try_snoop(conn, "MM-ATIPD", "KH-AHTJP")
            console.print(f"nats-server answered: [red]{denied}[/]")
            if "permissions violation" not in denied:
                raise DemoFailed("the server did not refuse a foreign subscription")

            # 6. The audit log.
            console.print(Rule("6. The audit log"))
            assert stack.audit is not None
            for _ in range(50):
                if stack.audit.size >= counts["delivered"] + counts["refused"] + 3:
                    break
                await asyncio.sleep(0.1)
            head = await stack.audit.publish_head()
            console.print(f"{head.size} entries; signed tree head root {head.root.hex()[:16]}… "
                          f"by {head.key_id}")
        finally:
            for c in clients.values():
                await c.close()
    console.print(Rule("done"))
    console.print(f"delivered {counts['delivered']}, refused {counts['refused']}, "
                  f"opened {counts['opened']}; every process stopped.")
    if counts["delivered"] == 0 or counts["refused"] == 0 or counts["opened"] == 0:
        raise DemoFailed(f"the exchange did not go as scripted: {counts}")
    return counts


async def _show_outcome(
    console: Console, client: AgencyClient, sent: Sent, counts: dict[str, int]
) -> None:
    if sent.refused:
        console.print(refusals_table(sent.refused, "refused when resolving (before sealing)"))
        counts["refused"] += len(sent.refused)
    if not sent.submitted:
        console.print("nothing to send: no recipient permitted")
        return
    outcome = await client.wait_outcome(sent.header.id)
    console.print(f"sealed to {', '.join(sent.sealed_to)}; broker {outcome.status}: "
                  f"delivered to [green]{', '.join(outcome.delivered) or 'nobody'}[/]")
    counts["delivered"] += len(outcome.delivered)
    if outcome.refused:
        console.print(refusals_table(outcome.refused, "refused by the broker's re-check"))
        counts["refused"] += len(outcome.refused)


async def _try_snoop(conn: Connection, agency: str, victim: str) -> str:
    """A raw NATS connection (no SDK) with `agency`'s own credentials subscribes to
    `victim`'s deliveries."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await connect_nats(conn, agency, conn.credentials(agency).nkey, error_cb=on_error)
    try:
        await nc.subscribe(s.deliver(victim))
        await nc.flush()
        for _ in range(20):
            if errors:
                break
            await asyncio.sleep(0.05)
    finally:
        await nc.close()
    return errors[0] if errors else "(no answer)"
