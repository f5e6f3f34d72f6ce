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
    extra: dict[str, Any] | None = None,
) -> str:
    """nats-server's configuration format is a superset of JSON, so JSON is written:
    no hand-rolled quoting of subjects and keys."""
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
    if extra:
        conf.update(extra)
    return json.dumps(conf, indent=2)
