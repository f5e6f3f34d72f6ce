"""The generated NATS account layout keeps every lane in its own account: checked on the
configuration itself, for the sample federation, so a later edit that exported a lane
to everyone or gave an agency JetStream of its own fails here before any server runs."""

from __future__ import annotations

import json
from pathlib import Path

from broker.hosting import provision
from broker.hosting.stack import BROKER_NAME, SEQUENCER_NAME, members
from policies.federation import load_federation
from tests.support.paths import SAMPLE_FEDERATION as SAMPLE
from transport import subjects as s


def layout(tmp_path: Path) -> dict[str, dict[str, object]]:
    fed = load_federation(SAMPLE)
    principals = provision.provision(tmp_path / "creds", members(fed))
    conf = json.loads(provision.server_config(
        host="127.0.0.1", port=4222, store_dir=tmp_path / "js", principals=principals))
    assert "authorization" not in conf  # no user outside an account
    accounts: dict[str, dict[str, object]] = conf["accounts"]
    return accounts


def test_only_the_services_account_has_jetstream(tmp_path: Path) -> None:
    accounts = layout(tmp_path)
    with_js = sorted(name for name, acct in accounts.items() if "jetstream" in acct)
    assert with_js == [provision.SERVICES_ACCOUNT]


def test_every_export_is_importable_by_exactly_one_account(tmp_path: Path) -> None:
    accounts = layout(tmp_path)
    exports = accounts[provision.SERVICES_ACCOUNT]["exports"]
    assert isinstance(exports, list) and exports
    for export in exports:
        assert len(export["accounts"]) == 1, export
        owner = export["accounts"][0]
        subject = export["service"]
        if owner.startswith(provision.AGENCY_ACCOUNT_PREFIX):
            agency = owner.removeprefix(provision.AGENCY_ACCOUNT_PREFIX)
            # An agency's export names that agency (its subject or its consumers).
            assert subject.split(".")[-1] in (agency, s.inbox_consumer(agency),
                                               s.report_consumer(agency), ">"), export
            assert agency in subject, export
        else:
            assert owner == provision.AUDITORS_ACCOUNT
            assert s.DELIVER_STREAM not in subject and "deliver" not in subject, export


def test_each_agency_imports_only_its_own_lane(tmp_path: Path) -> None:
    accounts = layout(tmp_path)
    fed = load_federation(SAMPLE)
    agencies = [a.id for a in fed.agencies if not a.is_auditor]
    for agency in agencies:
        acct = accounts[provision.agency_account(agency)]
        imported = {i["service"]["subject"] for i in acct["imports"]}  # type: ignore[attr-defined]
        assert imported == {subj for subj, _ in provision.agency_services(agency)}
        others = [o for o in agencies if o != agency]
        for subject in imported:
            assert not any(subject.endswith(("." + o, "-" + o, "-" + o + ".>"))
                           for o in others), subject
        assert acct["limits"] == provision.DEFAULT_LIMITS.to_conf()
        users = acct["users"]
        assert isinstance(users, list) and len(users) == 1


def test_brokers_may_not_write_the_log_and_the_sequencer_may(tmp_path: Path) -> None:
    fed = load_federation(SAMPLE)
    by_name = {p.name: p for p in provision.provision(tmp_path / "creds", members(fed))}
    broker = provision.permissions(by_name[BROKER_NAME])
    assert s.AUDIT_SUBJECT in broker["publish"]["deny"]
    assert s.AUDIT_HEAD_SUBJECT in broker["publish"]["deny"]
    assert "deny" not in provision.permissions(by_name[SEQUENCER_NAME])["publish"]
