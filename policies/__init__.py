"""The policy engine: the federation registry and Cedar policies that decide who may
receive, forward and use each message."""

from policies.engine import Consent, Decision, PolicyEngine, PolicyLoadError
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
