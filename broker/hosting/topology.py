"""A federation on NATS's own topology, rendered from the federation file.

    hub        a three-node JetStream cluster run by the federation secretariat: the
               services account (brokers, sequencer, acknowledgment watcher, operator),
               the auditors' account and one account per agency, exactly as
               broker/hosting/provision.py lays them out for `orcon dev`
    leafnodes  one nats-server per country, in the national network, dialling out to
               the hub: it holds the accounts of that country's agencies only, with
               the desks' users the country's operator issues, and binds each account
               to the same account on the hub over its own leafnode link

Isolation stays by account: a leafnode link authenticates on the hub as a user of one
agency's account, so whatever a country's leafnode (or whoever runs it) sends lands in
the accounts of its own agencies, which import nothing but their own lanes. A country
can add desks (users) to its leafnode without the secretariat; it cannot add an agency
(an account) without the federation's registry and the hub's configuration.

Layout of the rendered directory:

    hub/n1.conf n2.conf n3.conf       the hub's nodes (JetStream, routes, leafnode port)
    hub/creds/orcon-*.nk              each service's nkey seed (0600)
    hub/creds/route.pw                the route password (0600)
    auditors/creds/AUDITOR.nk         auditors connect to the hub
    countries/CC/leaf.conf            the country's leafnode (holds link seeds: 0600)
    countries/CC/creds/AGENCY.nk      the desks' credentials, issued by the country
    countries/CC/link/AGENCY.nk       the leafnode link's seed for AGENCY's account
    plan.json                         hosts and ports, for people and tests

Keys (orcon identities, the root, the directory) are not configuration and are not
made here; `connection_files` writes the connection.json of the hub's services, the
auditors and each country from a provisioned federation's connection.json.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from broker.hosting import provision
from broker.hosting.node import ROLE_USER
from broker.hosting.tls import TlsFiles, server_tls_block
from policies.federation import Federation, load_federation
from transport.connection import AgencyCredentials, Connection, write_connection

HUB_NODES = ("n1", "n2", "n3")


@dataclass(frozen=True)
class HubNode:
    name: str
    host: str
    client_port: int
    cluster_port: int
    leaf_port: int
    store_dir: str


@dataclass(frozen=True)
class Leaf:
    country: str
    host: str
    client_port: int


@dataclass(frozen=True)
class Plan:
    """Where each server listens. `sample` is the documented production shape;
    `loopback` puts everything on 127.0.0.1 with free ports (tests, a laptop)."""

    hub: list[HubNode]
    leaves: dict[str, Leaf]
    tls: bool = False
    tls_dir: str = "/etc/orcon/tls"
    max_payload: int = 8 * 1024 * 1024
    extra: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def sample(countries: list[str], data_root: str = "/var/lib/orcon") -> Plan:
        hub = [HubNode(n, f"hub-{n}.federation.example", 4222, 6222, 7422,
                       f"{data_root}/nats/{n}/jetstream") for n in HUB_NODES]
        leaves = {c: Leaf(c, f"orcon-leaf.{c.lower()}.example", 4222) for c in countries}
        return Plan(hub, leaves, tls=True)

    @staticmethod
    def loopback(countries: list[str], data_root: Path) -> Plan:
        ports = iter(_free_ports(3 * len(HUB_NODES) + len(countries)))
        hub = [HubNode(n, "127.0.0.1", next(ports), next(ports), next(ports),
                       str(data_root / "hub" / n / "jetstream")) for n in HUB_NODES]
        leaves = {c: Leaf(c, "127.0.0.1", next(ports)) for c in countries}
        return Plan(hub, leaves, tls=False)

    def hub_urls(self) -> list[str]:
        scheme = "tls" if self.tls else "nats"
        return [f"{scheme}://{n.host}:{n.client_port}" for n in self.hub]

    def leaf_url(self, country: str) -> str:
        leaf = self.leaves[country]
        return f"{'tls' if self.tls else 'nats'}://{leaf.host}:{leaf.client_port}"

    def tls_files(self) -> TlsFiles | None:
        if not self.tls:
            return None
        d = Path(self.tls_dir)
        return TlsFiles(ca=d / "ca.pem", cert=d / "server.pem", key=d / "server.key")


def _free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """`n` distinct free ports: each socket stays bound until all are picked, so the
    kernel cannot hand the same port out twice."""
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def countries_of(fed: Federation) -> list[str]:
    """The countries that run a leafnode: those of the federation's agencies (auditors
    connect to the hub and need none)."""
    return sorted({a.country for a in fed.agencies if not a.is_auditor})


def _conf(path: Path, header: str, conf: dict[str, Any], secret: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = header + json.dumps(conf, indent=2) + "\n"
    if secret:
        provision.write_secret(path, text.encode())
    else:
        path.write_text(text)


def _seed(path: Path) -> str:
    return path.read_bytes().decode().strip()


def render(out: Path, federation_path: Path, plan: Plan) -> list[Path]:
    """Write every configuration of the deployment under `out` (idempotent: existing
    seeds and the route password are kept, so a re-render after a registry change
    keeps every credential). Returns the configuration files written."""
    fed = load_federation(federation_path)
    out.mkdir(parents=True, exist_ok=True)
    hub_creds = out / "hub" / "creds"
    services = provision.provision(hub_creds, [(user, role) for role, user in ROLE_USER.items()
                                               if role in provision.SERVICE_ROLES])
    auditors = provision.provision(out / "auditors" / "creds",
                                   [(a.id, "auditor") for a in fed.agencies if a.is_auditor])
    by_country: dict[str, list[str]] = defaultdict(list)
    for a in fed.agencies:
        if not a.is_auditor:
            by_country[a.country].append(a.id)
    missing = sorted(set(by_country) - set(plan.leaves))
    if missing:
        raise ValueError(f"plan: no leafnode for {', '.join(missing)} (countries of the "
                         f"federation: {', '.join(sorted(by_country))})")
    # On the hub, an agency's account has one user: the leafnode link of its country.
    links: list[provision.Principal] = []
    desks: dict[str, list[provision.Principal]] = {}
    for country, ids in sorted(by_country.items()):
        cdir = out / "countries" / country
        links += provision.provision(cdir / "link", [(i, "agency") for i in ids])
        desks[country] = provision.provision(cdir / "creds", [(i, "agency") for i in ids])

    tls = plan.tls_files()
    route_pw_path = hub_creds / "route.pw"
    if not route_pw_path.exists():
        provision.write_secret(route_pw_path, secrets.token_hex(24).encode())
    route_pw = _seed(route_pw_path)
    nodes = [provision.ClusterNode(name=n.name, client_port=n.client_port,
                                   cluster_port=n.cluster_port, store_dir=Path(n.store_dir))
             for n in plan.hub]
    written: list[Path] = []
    for node, spec in zip(nodes, plan.hub, strict=True):
        conf = provision._server_dict(
            host=spec.host, port=spec.client_port, store_dir=node.store_dir,
            principals=[*services, *auditors, *links], max_payload=plan.max_payload,
            server_name=f"hub-{spec.name}", http_port=None, tls=tls, extra=None)
        conf["listen"] = f"{spec.host}:{spec.client_port}"
        conf["cluster"] = {
            "name": "orcon-hub",
            "listen": f"{spec.host}:{spec.cluster_port}",
            "authorization": {"user": "route", "password": route_pw, "timeout": 2},
            "routes": [f"nats-route://route:{route_pw}@{o.host}:{o.cluster_port}"
                       for o in plan.hub if o is not spec],
        }
        leafnodes: dict[str, Any] = {"listen": f"{spec.host}:{spec.leaf_port}"}
        if tls is not None:
            conf["cluster"]["tls"] = {**server_tls_block(tls), "verify": True}
            leafnodes["tls"] = server_tls_block(tls)
        conf["leafnodes"] = leafnodes
        path = out / "hub" / f"{spec.name}.conf"
        _conf(path, f"# orcon hub node {spec.name}: generated by `orcon deploy render`; "
              "regenerate, never edit.\n", conf, secret=True)  # holds the route password
        written.append(path)

    leaf_scheme = "nats-leaf"  # with a `tls` block the link is TLS all the same
    for country, principals in sorted(desks.items()):
        leaf = plan.leaves[country]
        cdir = out / "countries" / country
        accounts: dict[str, Any] = {}
        remotes: list[dict[str, Any]] = []
        hub_leaf_urls = [f"{leaf_scheme}://{n.host}:{n.leaf_port}" for n in plan.hub]
        for p in principals:
            acct = provision.agency_account(p.name)
            mappings: dict[str, str] = {}
            for subject, _ in provision.agency_services(p.name):
                mappings.update(provision._mapping(subject))
            accounts[acct] = {
                "users": [{"nkey": p.public_nkey, "permissions": provision.permissions(p)}],
                # The same mapping as on the hub: without it the leafnode would not
                # forward `$JS.API` (the hub's account shows no interest in it).
                "mappings": mappings,
                "limits": provision.DEFAULT_LIMITS.to_conf(),
            }
            remote: dict[str, Any] = {
                "urls": hub_leaf_urls, "account": acct,
                "nkey": _seed(cdir / "link" / f"{p.name}.nk"),
            }
            if tls is not None:
                remote["tls"] = {"ca_file": str(tls.ca)}
            remotes.append(remote)
        conf = {
            "server_name": f"leaf-{country}",
            "listen": f"{leaf.host}:{leaf.client_port}",
            "max_payload": plan.max_payload,
            "accounts": accounts,
            "leafnodes": {"remotes": remotes, "reconnect": "1s"},
        }
        if tls is not None:
            conf["tls"] = server_tls_block(tls)
        path = cdir / "leaf.conf"
        _conf(path, f"# orcon leafnode of {country}: generated by `orcon deploy render`. "
              "Holds the link seeds: keep it 0600.\n", conf, secret=True)
        written.append(path)
    (out / "plan.json").write_text(json.dumps(asdict(plan), indent=2) + "\n")
    return written


def connection_files(out: Path, plan: Plan, base: Connection) -> dict[str, Path]:
    """connection.json for the hub's services (`out/hub`), the auditors
    (`out/auditors`) and each country's desks (`out/countries/CC`), from a provisioned
    federation's connection file `base` (root key, registry, directory, key files).
    Returns {"hub": path, "auditors": path, CC: path, ...}."""
    ca = str(plan.tls_files().ca) if plan.tls_files() else base.ca  # type: ignore[union-attr]
    hub_creds = out / "hub" / "creds"
    common = {"root_public": base.root_public, "federation": base.federation,
              "directory": base.directory, "log_public": base.log_public,
              "ca": ca if plan.tls else None}
    written: dict[str, Path] = {}
    hub = Connection(url=",".join(plan.hub_urls()), agencies={},
                     broker_nkey=str(hub_creds / f"{ROLE_USER['broker']}.nk"),
                     operator_nkey=str(hub_creds / f"{ROLE_USER['operator']}.nk"),
                     **common)  # type: ignore[arg-type]
    written["hub"] = write_connection(out / "hub", hub)
    auditors = {p.stem: AgencyCredentials(nkey=str(p))
                for p in sorted((out / "auditors" / "creds").glob("*.nk"))}
    written["auditors"] = write_connection(
        out / "auditors", msgspec.structs.replace(hub, agencies=auditors, broker_nkey=None,
                                                  operator_nkey=None))
    for country in plan.leaves:
        cdir = out / "countries" / country
        desks = {p.stem: AgencyCredentials(nkey=str(p), key=base.agencies[p.stem].key
                                           if p.stem in base.agencies else None)
                 for p in sorted((cdir / "creds").glob("*.nk"))}
        conn = Connection(url=plan.leaf_url(country), agencies=desks, **common)  # type: ignore[arg-type]
        written[country] = write_connection(cdir, conn)
    for path in written.values():
        os.chmod(path, 0o644)
    return written
