"""Who a message could go to before any policy decides: its named recipients, its
audience expanded to agencies, and the focal points whose subscriptions match it."""

from __future__ import annotations

from policies.federation import Federation, Role, Subscription
from schemas.codes import Urgency
from schemas.header import Header


def subscription_matches(sub: Subscription, header: Header) -> bool:
    """A focal point's filter against the signed header: every non-empty list must
    share a value with the header (empty matches all), and the urgency must reach
    `min_urgency`. A filter on topics matches nothing when the header has no topics."""
    t = header.topics
    return (
        (not sub.kinds or header.kind in sub.kinds)
        and (not sub.categories or header.category in sub.categories)
        and (not sub.route_countries or bool(set(sub.route_countries) & set(t.route_countries)))
        and (not sub.document_types or bool(set(sub.document_types) & set(t.document_types)))
        and (not sub.nationalities or bool(set(sub.nationalities) & set(t.nationalities)))
        and Urgency(header.urgency).rank >= Urgency(sub.min_urgency).rank
    )


def candidates(fed: Federation, header: Header) -> list[str]:
    """Named recipients plus the audience expanded to agencies; never the sender,
    never auditors. Unknown named recipients stay in, so that the sender is told
    they were refused instead of them silently vanishing."""
    out: set[str] = set(header.recipients)
    for name in header.audience:
        if name == "ALL":
            out.update(a.id for a in fed.agencies)
        elif fed.is_agency(name):
            out.add(name)
        elif fed.is_group(name):
            out.update(fed.members_of(name))
        else:
            out.update(fed.agencies_of_country(name))
    # Focal points' subscriptions pull in what matches their remit, but only for
    # broadcasts (an audience) and alerts: a bilateral exchange stays between the
    # parties the sender named, and TLP:RED is for named recipients only. The
    # receive policy still decides each one, so a match is never a permission.
    if (header.audience or header.kind == "alert") and header.restrictions.tlp != "RED":
        for fp in fed.agencies:
            if (fp.subscriptions and Role.FOCAL_POINT in fp.roles
                    and any(subscription_matches(sub, header) for sub in fp.subscriptions)):
                out.add(fp.id)
    out.discard(header.sender)
    return sorted(
        a for a in out if (ag := fed.get_agency(a)) is None or not ag.is_auditor
    )
