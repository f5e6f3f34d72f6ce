"""The policy engine: the federation registry and Cedar policies that decide who may
receive, forward and use each message."""

from policies.decisions import Consent, Decision
from policies.engine import PolicyEngine
from policies.federation import (
    Agency,
    AgencyType,
    Agreement,
    Federation,
    FederationError,
    Group,
    Role,
    Subscription,
    dumps,
    federation_from_dict,
    load_federation,
)
from policies.loading import PolicyLoadError

__all__ = [
    "Agency",
    "AgencyType",
    "Agreement",
    "Consent",
    "Decision",
    "Federation",
    "FederationError",
    "Group",
    "PolicyEngine",
    "PolicyLoadError",
    "Role",
    "Subscription",
    "dumps",
    "federation_from_dict",
    "load_federation",
]
