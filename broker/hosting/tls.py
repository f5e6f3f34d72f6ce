"""A development certificate authority for the embedded nats-server.

`orcon dev` encrypts NATS traffic even on one machine, so the deployment that people
try first is the one that is safe to copy. The CA and the server certificate are
generated once under the data directory and reused (idempotent); private keys are 0600.
Real deployments use their own certificates (docs/operations.md): only the three paths
in `TlsFiles` matter to the rest of orcon.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keys.keyfile import atomic_write
from transport.tls import TlsError

CA_DAYS = 3650
# Short enough that a leaked development certificate ages out, long enough that a
# developer's stack keeps working; it is renewed on start when close to expiry.
SERVER_DAYS = 397
RENEW_BEFORE = timedelta(days=30)
DEFAULT_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # PEM certificate clients trust
    cert: Path  # PEM server certificate (chain)
    key: Path  # PEM server private key (0600)


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Whole or not at all (keys.keyfile.atomic_write: a private temporary name, synced,
    # renamed): a crash never leaves half a key that a later start would try (and fail)
    # to load, nor a fragment of one under another name.
    atomic_write(path, data, mode=mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),  # nats-server cannot read encrypted keys
    )


def _load(path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    key_path = path.with_suffix(".key")
    if not path.is_file() or not key_path.is_file():
        return None
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except ValueError as exc:
        raise TlsError(f"{path} or {key_path} is not a valid PEM file: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsError(f"{key_path} is not an EC private key")
    return cert, key


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "orcon development"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _new_ca(now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("orcon development CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _san(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return names


def _new_server(
    ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, hosts: tuple[str, ...],
    now: datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("orcon nats-server"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
        # Server and client auth: cluster routes use the same certificate both ways.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _covers(cert: x509.Certificate, hosts: tuple[str, ...]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(_san(hosts)) <= set(san)


def ensure_dev_ca(
    tls_dir: Path, *, now: datetime, hosts: tuple[str, ...] = DEFAULT_HOSTS
) -> TlsFiles:
    """The CA and a server certificate for `hosts` under `tls_dir`, created on first use
    (valid from `now`).

    Existing files are kept, so clients that already pinned the CA keep working; the
    server certificate alone is reissued when it nears expiry or lacks a host.
    """
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = TlsFiles(ca=tls_dir / "ca.pem", cert=tls_dir / "server.pem",
                     key=tls_dir / "server.key")
    loaded = _load(files.ca)
    if loaded is None:
        ca, ca_key = _new_ca(now)
        _write(tls_dir / "ca.key", _key_pem(ca_key), 0o600)
        _write(files.ca, ca.public_bytes(serialization.Encoding.PEM), 0o644)
    else:
        ca, ca_key = loaded
    server = _load(files.cert)
    if (
        server is None
        or server[0].issuer != ca.subject
        or server[0].not_valid_after_utc - RENEW_BEFORE < now
        or not _covers(server[0], hosts)
    ):
        cert, key = _new_server(ca, ca_key, hosts, now)
        _write(files.key, _key_pem(key), 0o600)
        _write(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return files


def server_tls_block(files: TlsFiles, *, verify_clients: bool = False,
                     timeout_s: float = 5.0) -> dict[str, object]:
    """The `tls {}` block of a nats-server config. Client certificates are not asked
    for: agencies authenticate with nkeys, TLS protects the channel."""
    block: dict[str, object] = {
        "cert_file": str(files.cert),
        "key_file": str(files.key),
        "ca_file": str(files.ca),
        "timeout": timeout_s,
    }
    if verify_clients:
        block["verify"] = True
    return block
