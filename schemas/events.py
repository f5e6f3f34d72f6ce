"""The audit event vocabulary: what the broker records, what the policies' act rules
decide and what auditors read (the record that carries an event: broker/audit/events.py)."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    SUBMITTED = "submitted"
    REJECTED = "rejected"
    DELIVERED = "delivered"
    REFUSED = "refused"
    ACKNOWLEDGED = "acknowledged"
    CONSENT_REQUESTED = "consent_requested"
    CONSENT_GRANTED = "consent_granted"
    CONSENT_REFUSED = "consent_refused"
    FORWARDED = "forwarded"
    FORWARD_REFUSED = "forward_refused"
    USE_DECLARED = "use_declared"
    USE_REFUSED = "use_refused"
    PURGED = "purged"
    AMENDED = "amended"
    AMEND_REFUSED = "amend_refused"
    WITHDRAWN = "withdrawn"
    AMEND_APPLIED = "amend_applied"
    KEY_CHANGED = "key_changed"
    POLICY_CHANGED = "policy_changed"
    DEAD_LETTERED = "dead_lettered"
