"""Messages between clients and brokers (not end-to-end encrypted: metadata only)."""

from __future__ import annotations

from typing import Literal

import msgspec

# What became of a submission: "routed" (delivered to `delivered`, refused for
# `refused`), "refused" (a life-cycle act the policy refused as a whole), "rejected"
# (the submission itself is invalid: `error` says why) or "unacknowledged" (an urgent
# message a recipient has not acknowledged in time: a reminder was sent).
OutcomeStatus = Literal["routed", "refused", "rejected", "unacknowledged"]


class Refusal(msgspec.Struct, gc=False, frozen=True):
    recipient: str
    rule: str  # the deciding policy id, e.g. "restriction.exclude"
    reason: str  # one sentence for the sender


class Outcome(msgspec.Struct, gc=False, frozen=True, omit_defaults=True):
    """What became of a submission, reported to its sender."""

    message_id: str
    sender: str
    status: OutcomeStatus
    delivered: list[str] = []
    refused: list[Refusal] = []
    policy_version: str = ""
    error: str | None = None  # why the whole submission was rejected


class ResolveRequest(msgspec.Struct, gc=False, frozen=True):
    """A draft header (msgpack bytes of schemas.Header, unsigned) to resolve."""

    header: bytes


class DraftError(msgspec.Struct, gc=False, frozen=True):
    """Why a draft cannot be sent, field by field (`schemas.errors.FieldError` on the
    wire): e.g. path "header.restrictions.exclude[0]", rule "restriction.unresolved"."""

    path: str
    rule: str
    message: str


class ResolveReply(msgspec.Struct, gc=False, frozen=True, omit_defaults=True):
    permitted: list[str] = []
    refused: list[Refusal] = []
    policy_version: str = ""
    error: str | None = None
    errors: list[DraftError] = []  # set with `error` when the draft itself is refused
