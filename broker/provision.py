"""NATS credentials and the server configuration, derived from the federation.

Defense in depth (DESIGN.md, principle 5): the server itself refuses what an agency may
not do, so a bug in the broker or a stolen agency credential cannot widen access.
Each principal authenticates with its own nkey (an Ed25519 key; the server stores only
the public half).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nkeys

from broker import subjects as s
from broker.tls import TlsFiles, server_tls_block

Role = Literal["broker", "agency", "auditor"]


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    seed_path: Path
    public_nkey: str


def _write_secret(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def ensure_nkey(creds_dir: Path, name: str) -> tuple[Path, str]:
    """The nkey seed file for `name`, created on first use; returns (path, public key)."""
    path = creds_dir / f"{name}.nk"
    if not path.exists():
        seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
        _write_secret(path, seed)
    kp = nkeys.from_seed(path.read_bytes().strip())
    return path, kp.public_key.decode()


def provision(creds_dir: Path, members: Iterable[tuple[str, Role]]) -> list[Principal]:
    principals = []
    for name, role in members:
        path, public = ensure_nkey(creds_dir, name)
        principals.append(Principal(name, role, path, public))
    return principals


def _js_consumer(verb: str, stream: str, consumer: str) -> str:
    return f"$JS.API.CONSUMER.{verb}.{stream}.{consumer}"


def permissions(principal: Principal) -> dict[str, Any]:
    """Allow-lists; everything not listed is denied by the server."""
    name = principal.name
    if principal.role == "broker":
        return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}
    inbox = f"{s.inbox_prefix(name)}.>"
    if principal.role == "auditor":
        pub = [
            f"$JS.API.STREAM.INFO.{s.AUDIT_STREAM}",
            f"$JS.API.STREAM.MSG.GET.{s.AUDIT_STREAM}",
            f"$JS.API.STREAM.INFO.{s.AUDIT_HEAD_STREAM}",
            f"$JS.API.STREAM.MSG.GET.{s.AUDIT_HEAD_STREAM}",
            s.HEAD_REQUEST_SUBJECT,
            s.directory(name),
        ]
        return {"publish": {"allow": pub}, "subscribe": {"allow": [inbox]}}
    pub = [s.submit(name), s.resolve(name), s.directory(name)]
    for consumer in (s.inbox_consumer(name), s.report_consumer(name)):
        pub += [
            _js_consumer("MSG.NEXT", s.DELIVER_STREAM, consumer),
            _js_consumer("INFO", s.DELIVER_STREAM, consumer),
            f"$JS.ACK.{s.DELIVER_STREAM}.{consumer}.>",
        ]
    return {"publish": {"allow": pub}, "subscribe": {"allow": [inbox]}}


def server_config(
    *,
    host: str,
    port: int,
    store_dir: Path,
    principals: Iterable[Principal],
    max_payload: int = 8 * 1024 * 1024,
    server_name: str = "orcon",
    http_port: int | None = None,
    tls: TlsFiles | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """nats-server's configuration format is a superset of JSON, so JSON is written:
    no hand-rolled quoting of subjects and keys. With `tls`, clients must use TLS
    (nats-server refuses plain connections once a `tls` block is present)."""
    return json.dumps(
        _server_dict(host=host, port=port, store_dir=store_dir, principals=principals,
                     max_payload=max_payload, server_name=server_name,
                     http_port=http_port, tls=tls, extra=extra),
        indent=2,
    )


def _server_dict(
    *,
    host: str,
    port: int,
    store_dir: Path,
    principals: Iterable[Principal],
    max_payload: int,
    server_name: str,
    http_port: int | None,
    tls: TlsFiles | None,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "server_name": server_name,
        "listen": f"{host}:{port}",
        "max_payload": max_payload,
        "jetstream": {"store_dir": str(store_dir), "max_file_store": 8 * 1024**3},
        "authorization": {
            "users": [
                {"nkey": p.public_nkey, "permissions": permissions(p)} for p in principals
            ]
        },
    }
    if http_port is not None:
        conf["http"] = f"{host}:{http_port}"
    if tls is not None:
        conf["tls"] = server_tls_block(tls)
    if extra:
        conf.update(extra)
    return conf


@dataclass(frozen=True)
class ClusterNode:
    name: str
    client_port: int
    cluster_port: int
    store_dir: Path

    def url(self, host: str, tls: bool) -> str:
        return f"{'tls' if tls else 'nats'}://{host}:{self.client_port}"


def cluster_configs(
    *,
    nodes: list[ClusterNode],
    principals: Iterable[Principal],
    route_password: str,
    host: str = "127.0.0.1",
    cluster_name: str = "orcon",
    tls: TlsFiles | None = None,
    max_payload: int = 8 * 1024 * 1024,
) -> dict[str, str]:
    """One nats-server config per node (name -> config text): the same users and
    permissions everywhere (a client may land on any node), JetStream on each node,
    and routes to every other node.

    Routes authenticate with a shared password, so nothing else on the machine can
    join the cluster and read replicated streams; with `tls`, routes are encrypted too
    and both sides present the server certificate.
    """
    principals = list(principals)
    confs: dict[str, str] = {}
    for node in nodes:
        conf = _server_dict(
            host=host, port=node.client_port, store_dir=node.store_dir,
            principals=principals, max_payload=max_payload, server_name=node.name,
            http_port=None, tls=tls, extra=None,
        )
        cluster: dict[str, Any] = {
            "name": cluster_name,
            "listen": f"{host}:{node.cluster_port}",
            "authorization": {"user": "route", "password": route_password,
                              "timeout": 2},
            "routes": [
                f"nats-route://route:{route_password}@{host}:{other.cluster_port}"
                for other in nodes if other is not node
            ],
        }
        if tls is not None:
            cluster["tls"] = {**server_tls_block(tls), "verify": True}
        conf["cluster"] = cluster
        confs[node.name] = json.dumps(conf, indent=2)
    return confs
