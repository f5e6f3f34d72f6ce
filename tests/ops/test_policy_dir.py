"""Which consent a use needs is asked of the rules that then decide the use: a broker
whose engine loads its policies from another directory asks that directory
(`policies.acts.needed_consent(..., engine.policy_dir)`), not the built-in one; and the
holder's check reads the restrictions file as it is now, not as it was first parsed (a
file edited for an engine's reload used to be served from the old parse for the life
of the process). Real Cedar (cedarpy), real policy files."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from policies import holdercheck
from policies.acts import needed_consent
from policies.decisions import Consent
from policies.engine import PolicyEngine
from policies.federation import load_federation
from policies.loading import DEFAULT_POLICY_DIR
from schemas import Category, Header, Level, Restrictions, new_message_id
from schemas.codes import ConsentScope, UseKind
from tests.support.paths import SAMPLE_FEDERATION

EVIDENTIAL_ONLY = "  context.evidential &&\n  context.no_evidential_use &&"
ANY_USE = "  context.no_evidential_use &&"
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _custom(tmp_path: Path) -> Path:
    """The built-in policies, but no_evidential_use forbids every use (not only
    evidential ones) without the originator's consent."""
    d = tmp_path / "cedar"
    shutil.copytree(DEFAULT_POLICY_DIR, d)
    path = d / holdercheck.RESTRICTIONS_FILE
    text = path.read_text()
    assert EVIDENTIAL_ONLY in text
    path.write_text(text.replace(EVIDENTIAL_ONLY, ANY_USE))
    return d


def test_the_consent_needed_is_the_one_the_engine_then_asks_for(tmp_path: Path) -> None:
    custom = _custom(tmp_path)
    r = Restrictions(no_evidential_use=True)
    assert needed_consent(UseKind.ANALYSIS, False, r) is None  # the built-in rules
    engine = PolicyEngine(load_federation(SAMPLE_FEDERATION), custom)
    need = needed_consent(UseKind.ANALYSIS, False, r, engine.policy_dir)
    assert need is ConsentScope.EVIDENTIAL_USE
    header = Header(v="1.0", id=new_message_id(NOW), kind="intel_report", sender="TH-AHTD",
                    sender_key="ed25519:AAAAAAAAAAAA", created_at=NOW,
                    category=Category.ROUTES, level=Level.RESTRICTED, restrictions=r,
                    recipients=["KH-AHTJP"])
    refused = engine.decide_use(header, "KH-AHTJP", "smuggling_of_migrants", False, [], NOW,
                                use_kind="analysis")
    assert not refused.allowed and refused.rule == "restriction.no_evidential_use"
    lifted = engine.decide_use(header, "KH-AHTJP", "smuggling_of_migrants", False,
                               [Consent(holdercheck.CEDAR_CONSENT[need], "KH-AHTJP")], NOW,
                               use_kind="analysis")
    assert lifted.allowed, lifted


def test_the_restrictions_file_is_read_as_it_is_now(tmp_path: Path) -> None:
    custom = _custom(tmp_path)
    r = Restrictions(no_evidential_use=True)

    def need() -> ConsentScope | None:
        return holdercheck.consent_needed(r, evidential=False, use_kind="analysis",
                                          policy_dir=custom)

    assert need() is ConsentScope.EVIDENTIAL_USE
    path = custom / holdercheck.RESTRICTIONS_FILE
    path.write_text(path.read_text().replace(ANY_USE, EVIDENTIAL_ONLY))  # edited in place
    assert need() is None
