"""NATS credentials and the server configuration, derived from the federation.

Defense in depth: the server itself refuses what an agency may not do, so a bug in the
broker or a stolen agency credential cannot widen access. Each principal authenticates
with its own nkey (an Ed25519 key; the server stores only the public half).

Isolation is by NATS accounts (docs/decisions.md, "NATS accounts"): the services
(brokers, the audit sequencer, watchers, operator tools) share one account that holds
JetStream; every agency has its own account and the auditors share one. An agency's
account imports only its own services from the services account, so whatever subject
an agency names (as a subject or as the reply subject of a request) is a subject of its
own account: it cannot reach the audit log, another agency's lane or a key-value
bucket, by construction. Per-user permissions inside each account remain, so a
violation is reported by the server rather than silently going nowhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nkeys

from broker.hosting.tls import TlsFiles, server_tls_block
from keys.keyfile import atomic_write
from transport import subjects as s

Role = Literal["broker", "sequencer", "ack-watcher", "operator", "agency", "auditor"]

# The roles of the services account, each with its own credential and permissions.
SERVICE_ROLES: tuple[Role, ...] = ("broker", "sequencer", "ack-watcher", "operator")

# NATS accounts. Every agency has its own account (named after it, with a prefix no
# agency id can collide with); the services and the auditors have one each. Subjects of
# one account are invisible to the others except what is exported and imported below.
SERVICES_ACCOUNT = "SERVICES"
AUDITORS_ACCOUNT = "AUDITORS"
AGENCY_ACCOUNT_PREFIX = "AGENCY-"


def agency_account(agency: str) -> str:
    s.submit(agency)  # raises unless the id is one safe subject token
    return AGENCY_ACCOUNT_PREFIX + agency


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    seed_path: Path
    public_nkey: str

    @property
    def account(self) -> str:
        if self.role in SERVICE_ROLES:
            return SERVICES_ACCOUNT
        if self.role == "auditor":
            return AUDITORS_ACCOUNT
        return agency_account(self.name)


@dataclass(frozen=True)
class AccountLimits:
    """Per-agency quotas, enforced by nats-server on the agency's account (and, for
    queued submissions, by the SUBMIT stream per agency subject: broker/routing/streams.py).

    A flooding or compromised agency exhausts its own quota and nobody else's."""

    max_connections: int = 32
    max_subscriptions: int = 1_000
    # Never above the server's max_payload (the effective value is the smaller one).
    max_payload: int = 8 * 1024 * 1024

    def to_conf(self) -> dict[str, int]:
        return {
            "max_connections": self.max_connections,
            "max_subscriptions": self.max_subscriptions,
            "max_payload": self.max_payload,
        }


DEFAULT_LIMITS = AccountLimits()
def write_secret(path: Path, data: bytes) -> None:
    """A secret (an nkey seed, a route password) written 0600 whole or not at all: a
    crash mid-write must not leave a truncated seed that no service could use again."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, data, mode=0o600)


def ensure_nkey(creds_dir: Path, name: str) -> tuple[Path, str]:
    """The nkey seed file for `name`, created on first use; returns (path, public key)."""
    path = creds_dir / f"{name}.nk"
    if not path.exists():
        seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
        write_secret(path, seed)
    kp = nkeys.from_seed(path.read_bytes().strip())
    return path, kp.public_key.decode()


def provision(creds_dir: Path, members: Iterable[tuple[str, Role]]) -> list[Principal]:
    principals = []
    for name, role in members:
        path, public = ensure_nkey(creds_dir, name)
        principals.append(Principal(name, role, path, public))
    return principals


# How long the server keeps routing the answers of one imported pull request back to
# the agency (nats-server's default is 2 minutes). A pull that waits longer misses what
# arrives later: nothing is lost (unacknowledged, redelivered after the consumer's ack
# wait), only delayed; clients pull for seconds at a time.
PULL_RESPONSE_THRESHOLD = "10m"


def _js_consumer(verb: str, stream: str, consumer: str) -> str:
    return f"$JS.API.CONSUMER.{verb}.{stream}.{consumer}"


# What the brokers' user may never publish (only the sequencer's may): the audit log
# and its signed heads, and the JetStream calls that would reconfigure or remove those
# streams. Purging them or deleting entries is refused by the streams themselves
# (deny_purge, deny_delete: broker/routing/streams.py), for every user.
_AUDIT_WRITES = [
    s.AUDIT_SUBJECT,
    s.AUDIT_HEAD_SUBJECT,
    *(f"$JS.API.STREAM.{verb}.{stream}"
      for verb in ("UPDATE", "DELETE")
      for stream in (s.AUDIT_STREAM, s.AUDIT_HEAD_STREAM)),
]


def agency_services(agency: str) -> list[tuple[str, bool]]:
    """(subject, streamed response) of every service an agency's account imports: its
    own submission subject (a JetStream publish, acknowledged), resolve and directory
    requests, and pulls and acknowledgments on its two durable consumers."""
    out = [(s.submit(agency), False), (s.resolve(agency), False), (s.directory(agency), False)]
    for consumer in (s.inbox_consumer(agency), s.report_consumer(agency)):
        out += [
            # One pull request is answered by up to `batch` messages.
            (_js_consumer("MSG.NEXT", s.DELIVER_STREAM, consumer), True),
            (_js_consumer("INFO", s.DELIVER_STREAM, consumer), False),
            (f"$JS.ACK.{s.DELIVER_STREAM}.{consumer}.>", False),
        ]
    return out


def auditor_services(auditor: str) -> list[str]:
    """Read-only: stream info and single-message reads on the two audit streams, a
    fresh signed head, the key directory."""
    return [
        f"$JS.API.STREAM.INFO.{s.AUDIT_STREAM}",
        f"$JS.API.STREAM.MSG.GET.{s.AUDIT_STREAM}",
        f"$JS.API.STREAM.INFO.{s.AUDIT_HEAD_STREAM}",
        f"$JS.API.STREAM.MSG.GET.{s.AUDIT_HEAD_STREAM}",
        s.HEAD_REQUEST_SUBJECT,
        s.directory(auditor),
    ]


# The key-value buckets of the root-signed directory and registry (broker/routing/keysync.py,
# broker/routing/policysync.py); written by the operator only.
KV_BUCKETS = ("orcon-directory", "orcon-registry")


def _kv_reads(bucket: str) -> list[str]:
    stream = f"KV_{bucket}"
    return [f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.DIRECT.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}.>", f"$JS.API.STREAM.MSG.GET.{stream}",
            f"$JS.API.CONSUMER.CREATE.{stream}", f"$JS.API.CONSUMER.CREATE.{stream}.>",
            f"$JS.API.CONSUMER.DELETE.{stream}.>"]


def _ordered_reads(stream: str) -> list[str]:
    # What nats-py's ordered push consumer sends: find the stream, create (and on a
    # gap re-create) an ephemeral consumer, answer flow control.
    return ["$JS.API.STREAM.NAMES", f"$JS.API.STREAM.INFO.{stream}",
            f"$JS.API.CONSUMER.CREATE.{stream}", f"$JS.API.CONSUMER.CREATE.{stream}.>",
            f"$JS.API.CONSUMER.DELETE.{stream}.>", f"$JS.FC.{stream}.>"]


# Every JetStream call that reconfigures, removes or empties one of orcon's streams or
# buckets: only the sequencer (which creates them) may send the first two, nobody the
# others. Named stream by stream rather than `STREAM.*.>`, so `orcon bench` can still
# make its own scratch streams with the brokers' credential on a development stack.
_ORCON_STREAMS = (s.SUBMIT_STREAM, s.DELIVER_STREAM, s.AUDIT_STREAM, s.AUDIT_IN_STREAM,
                  s.AUDIT_HEAD_STREAM, *(f"KV_{b}" for b in KV_BUCKETS))
# The events waiting for the sequencer (a work queue): whoever pulls and acknowledges
# them takes them out before they are logged. Only the sequencer may.
_AUDIT_QUEUE_READS = [f"$JS.API.CONSUMER.{op}.{s.AUDIT_IN_STREAM}.>"
                      for op in ("MSG.NEXT", "CREATE", "DURABLE.CREATE", "DELETE")
                      ] + [f"$JS.ACK.{s.AUDIT_IN_STREAM}.>"]

_STREAM_ADMIN = [f"$JS.API.STREAM.{verb}.{stream}"
                 for verb in ("CREATE", "UPDATE", "DELETE", "PURGE")
                 for stream in _ORCON_STREAMS] + [
                 f"$JS.API.STREAM.MSG.DELETE.{stream}" for stream in _ORCON_STREAMS]


def permissions(principal: Principal) -> dict[str, Any]:
    """Allow-lists inside the principal's own account; everything not listed is denied
    by the server. The account boundary is what makes a reply subject harmless: these
    lists make a violation visible (the server reports it) rather than silent.

    Inside the services account each service has its own credential, permitted what it
    uses (docs/threat-model.md, "Service credentials"):
    - the sequencer creates the streams, the consumers and the buckets at start, reads
      its work queue and is the only writer of the audit log and its heads;
    - brokers route: they publish deliveries, reports and audit events and answer
      resolve and directory requests; they may read every stream of the services
      account (what they route and watch), but never write the log, the directory or
      registry bucket or the configuration of orcon's streams, nor submit as an agency;
    - the acknowledgment watcher reads deliveries (their headers, and one delivery by
      sequence for a reminder) and publishes reminders and reports;
    - the operator writes the directory and registry buckets, and creates no consumer
      outside them: one on DELIVER could push every delivery to its own inbox, or
      re-point an agency's inbox (brokers create a joining agency's consumers:
      broker/hosting/node.py)."""
    name = principal.name
    own_inbox = f"{s.service_inbox(name)}.>"
    if principal.role == "sequencer":
        return {
            "publish": {"allow": [
                s.AUDIT_SUBJECT, s.AUDIT_HEAD_SUBJECT,
                *(f"$JS.API.STREAM.{verb}.*" for verb in ("CREATE", "UPDATE", "INFO")),
                "$JS.API.STREAM.NAMES", "$JS.API.CONSUMER.LIST.*", "$JS.API.CONSUMER.NAMES.*",
                *(f"$JS.API.CONSUMER.{verb}.{stream}.>"
                  for verb in ("CREATE", "DURABLE.CREATE", "INFO")
                  for stream in (s.SUBMIT_STREAM, s.DELIVER_STREAM, s.AUDIT_IN_STREAM)),
                *_ordered_reads(s.AUDIT_STREAM),
                # The unfiltered consumer of stores older than per-agency consumers is
                # removed at start (broker/routing/streams.py).
                f"$JS.API.CONSUMER.DELETE.{s.SUBMIT_STREAM}.brokers",
                _js_consumer("MSG.NEXT", s.AUDIT_IN_STREAM, "sequencer"),
                f"$JS.ACK.{s.AUDIT_IN_STREAM}.sequencer.>",
                # Answers to head requests: an auditor's (the server's `_R_.` mapping
                # of an imported request) or a service's inbox; the sequencer answers
                # nowhere else (broker/audit/sequencer.py), and `allow_responses` is not
                # used (docs/decisions.md).
                "_R_.>", "_INBOX.>",
            ]},
            "subscribe": {"allow": [s.HEAD_REQUEST_SUBJECT, own_inbox]},
        }
    if principal.role == "broker":
        return {"publish": {"allow": [">"],
                            "deny": [*_AUDIT_WRITES, *_STREAM_ADMIN,
                                     *(f"$KV.{b}.>" for b in KV_BUCKETS),
                                     "orcon.submit.>", *_AUDIT_QUEUE_READS,
                                     f"$JS.API.CONSUMER.DELETE.{s.DELIVER_STREAM}.>"]},
                "subscribe": {"allow": [">"]}}
    if principal.role == "ack-watcher":
        return {
            # Reminders go on the watched delivery subjects only (broker/routing/acks.py).
            "publish": {"allow": [s.DELIVER_WATCHED, "orcon.report.*",
                                  *_ordered_reads(s.DELIVER_STREAM),
                                  # Its consumer is headers-only: a reminder fetches
                                  # its one delivery by sequence (broker/routing/acks.py).
                                  f"$JS.API.STREAM.MSG.GET.{s.DELIVER_STREAM}"]},
            "subscribe": {"allow": [own_inbox]},
        }
    if principal.role == "operator":
        return {
            "publish": {"allow": [
                *(f"$KV.{b}.>" for b in KV_BUCKETS),
                *(f"$JS.API.STREAM.CREATE.KV_{b}" for b in KV_BUCKETS),
                *(r for b in KV_BUCKETS for r in _kv_reads(b)),
                "$JS.API.STREAM.NAMES",
                *(f"$JS.FC.KV_{b}.>" for b in KV_BUCKETS),
            ]},
            "subscribe": {"allow": [own_inbox]},
        }
    inbox = f"{s.inbox_prefix(name)}.>"
    if principal.role == "auditor":
        pub = [_local(subject) for subject in auditor_services(name)]
    else:
        # The server checks permissions after the account's mappings (`_mapping`).
        pub = [_local(subject) for subject, _ in agency_services(name)]
    return {"publish": {"allow": pub}, "subscribe": {"allow": [inbox]}}


def accounts(
    principals: Iterable[Principal], limits: AccountLimits = DEFAULT_LIMITS
) -> dict[str, Any]:
    """The `accounts` block: JetStream lives in the services account only; each agency
    account imports exactly its own services, each export names the one account that
    may import it, so no account can import another's lane. Answers to imported
    requests travel back through the server's response mapping to the requester's
    account: a reply subject naming `orcon.audit` from an agency lands in the agency's
    own (empty) `orcon.audit`, never in the services'."""
    principals = list(principals)
    services: dict[str, Any] = {"jetstream": "enabled", "users": [], "exports": []}
    out: dict[str, Any] = {SERVICES_ACCOUNT: services}
    auditors_exported: set[str] = set()
    for p in principals:
        user = {"nkey": p.public_nkey, "permissions": permissions(p)}
        if p.account == SERVICES_ACCOUNT:
            services["users"].append(user)
            continue
        acct = out.setdefault(p.account, {"users": [], "imports": [], "mappings": {},
                                          "limits": limits.to_conf()})
        acct["users"].append(user)
        if p.role == "auditor":
            for subject in auditor_services(p.name):
                if subject not in auditors_exported:
                    auditors_exported.add(subject)
                    services["exports"].append(
                        {"service": subject, "accounts": [AUDITORS_ACCOUNT]})
                    acct["imports"].append(_import(subject))
                    acct["mappings"].update(_mapping(subject))
            continue
        for subject, streamed in agency_services(p.name):
            export: dict[str, Any] = {"service": subject, "accounts": [p.account]}
            if streamed:
                export["response_type"] = "stream"
                export["response_threshold"] = PULL_RESPONSE_THRESHOLD
            services["exports"].append(export)
            acct["imports"].append(_import(subject))
            acct["mappings"].update(_mapping(subject))
    return out


def _local(subject: str) -> str:
    """The subject under which an account imports `subject` of the services account."""
    if subject.startswith(s.JS_API + "."):
        return s.IMPORTED_JS_API + subject[len(s.JS_API):]
    return subject


def _import(subject: str) -> dict[str, Any]:
    return {"service": {"account": SERVICES_ACCOUNT, "subject": subject}, "to": _local(subject)}


def _mapping(subject: str) -> dict[str, str]:
    local = _local(subject)
    return {subject: local} if local != subject else {}


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
    limits: AccountLimits = DEFAULT_LIMITS,
) -> str:
    """nats-server's configuration format is a superset of JSON, so JSON is written:
    no hand-rolled quoting of subjects and keys. With `tls`, clients must use TLS
    (nats-server refuses plain connections once a `tls` block is present)."""
    return json.dumps(
        _server_dict(host=host, port=port, store_dir=store_dir, principals=principals,
                     max_payload=max_payload, server_name=server_name,
                     http_port=http_port, tls=tls, extra=extra, limits=limits),
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
    limits: AccountLimits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "server_name": server_name,
        "listen": f"{host}:{port}",
        "max_payload": max_payload,
        "jetstream": {"store_dir": str(store_dir), "max_file_store": 8 * 1024**3},
        "accounts": accounts(principals, limits),
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
    limits: AccountLimits = DEFAULT_LIMITS,
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
            http_port=None, tls=tls, extra=None, limits=limits,
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
