"""TLS on the embedded default: orcon's development CA, a server that refuses plain
connections, and clients that trust that CA alone."""

from __future__ import annotations

import asyncio
import ssl
import stat
from pathlib import Path

import nats
import pytest
from cryptography import x509

import schemas
from broker.hosting import tls
from broker.hosting.stack import DevStack
from clients.sdk.client import AgencyClient
from schemas import Category, Level
from schemas.clock import utcnow
from tests.support.paths import SAMPLE_FEDERATION as SAMPLE
from transport.connection import load_connection
from transport.tls import client_context


def test_dev_ca_is_idempotent_and_keys_are_private(tmp_path: Path) -> None:
    files = tls.ensure_dev_ca(tmp_path / "tls", now=utcnow())
    first = {p: p.read_bytes() for p in (files.ca, files.cert, files.key)}
    again = tls.ensure_dev_ca(tmp_path / "tls", now=utcnow())
    assert again == files
    assert {p: p.read_bytes() for p in first} == first  # nothing regenerated
    for key in (files.key, tmp_path / "tls" / "ca.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    cert.verify_directly_issued_by(ca)


def test_server_certificate_is_reissued_near_expiry_but_the_ca_is_kept(tmp_path: Path) -> None:
    from datetime import timedelta

    now = utcnow()
    files = tls.ensure_dev_ca(tmp_path / "tls", now=now)
    ca_before, cert_before = files.ca.read_bytes(), files.cert.read_bytes()
    later = now + timedelta(days=tls.SERVER_DAYS - 10)
    tls.ensure_dev_ca(tmp_path / "tls", now=later)
    assert files.ca.read_bytes() == ca_before
    assert files.cert.read_bytes() != cert_before


def test_client_context_refuses_a_missing_ca(tmp_path: Path) -> None:
    with pytest.raises(tls.TlsError, match="does not exist"):
        client_context(tmp_path / "nope.pem")


async def test_exchange_over_tls_and_plain_or_untrusted_clients_are_refused(
    tmp_path: Path,
) -> None:
    async with DevStack(tmp_path / "s", SAMPLE, fast_kdf=True, tls=True,
                        head_interval=0.2) as stack:
        conn = load_connection(tmp_path / "s")  # what a separate program would read
        assert conn.url.startswith("tls://") and conn.ca is not None
        th = await AgencyClient.connect(conn, "TH-AHTD", passphrase=stack.passphrase())
        kh = await AgencyClient.connect(conn, "KH-AHTJP", passphrase=stack.passphrase())
        try:
            body = schemas.IntelReport(title="t",
                                       narrative=schemas.Narrative(text="x", lang="en"))
            sent = await th.send(body, category=Category.ROUTES, level=Level.RESTRICTED,
                                 to=["KH-AHTJP"])
            outcome = await th.wait_outcome(sent.header.id)
            assert outcome.delivered == ["KH-AHTJP"]
            got = await kh.inbox(timeout=5)
            assert [m.header.id for m in got.messages] == [sent.header.id]
        finally:
            await th.close()
            await kh.close()

        seed = conn.credentials("TH-AHTD").nkey
        # A client that does not speak TLS gets nothing but the server's refusal.
        assert stack.server is not None
        reader, writer = await asyncio.open_connection(stack.server.host, stack.server.port)
        info = await asyncio.wait_for(reader.readline(), 5)
        assert b'"tls_required":true' in info
        writer.write(b'CONNECT {"verbose":false}\r\nPING\r\n')
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(4096), 5)
        assert b"PONG" not in answer
        writer.close()
        # ... and a client that trusts another CA refuses the server.
        other = tls.ensure_dev_ca(tmp_path / "other", now=utcnow())
        with pytest.raises(Exception) as failure:
            await nats.connect(conn.url, nkeys_seed=seed, allow_reconnect=False,
                               connect_timeout=2, max_reconnect_attempts=0,
                               tls=client_context(other.ca))
        assert _is_ssl_failure(failure.value), repr(failure.value)


def _is_ssl_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in repr(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def test_every_dial_follows_connection_json_and_none_can_drop_tls(
    tmp_path: Path,
) -> None:
    """One way to dial NATS: services, the operator, an agency and `orcon ops` all reach
    a server that requires TLS with the CA of connection.json, and a caller cannot hand
    the dial a TLS setting of its own (two dial sites once lacked TLS)."""
    from typer.testing import CliRunner

    from clients.cli.main import app
    from transport.connection import connect_nats

    async with DevStack(tmp_path / "s", SAMPLE, fast_kdf=True, tls=True) as stack:
        conn = stack.connection
        assert conn is not None and conn.ca is not None
        with pytest.raises(TypeError, match=r"connection\.json"):
            await connect_nats(conn, "TH-AHTD", conn.credentials("TH-AHTD").nkey, tls=None)
        assert stack.sequencer is not None and stack.ack_node is not None
        running = [stack.brokers[0].nc, stack.sequencer.nc, stack.ack_node.nc]
        dialled = [await stack.operator_connection("t"),
                   await connect_nats(conn, "TH-AHTD", conn.credentials("TH-AHTD").nkey)]
        try:
            # The server refuses plain connections (the test above), so a connection
            # that is up is a TLS one that trusted the development CA.
            assert all(nc.is_connected for nc in running + dialled)
            argv = ["ops", "dead-letters", "--data-dir", str(stack.data_dir)]
            ops = await asyncio.to_thread(CliRunner().invoke, app, argv)
            assert ops.exit_code == 0, ops.output
            assert "0 dead letter(s)" in ops.output
        finally:
            for nc in dialled:
                await nc.close()
