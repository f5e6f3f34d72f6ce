"""Every NATS subject, stream and consumer name orcon uses, in one place.

Permissions (broker/hosting/provision.py) are derived from these functions, so a subject can
never be renamed here without the server-side permissions following it.
"""

from __future__ import annotations

from schemas.ids import PARTY_NAME_RE

AGENCY_ID_RE = PARTY_NAME_RE

SUBMIT_STREAM = "SUBMIT"
DELIVER_STREAM = "DELIVER"
AUDIT_STREAM = "AUDIT"
AUDIT_HEAD_STREAM = "AUDITHEAD"
AUDIT_IN_STREAM = "AUDITIN"

BROKER_QUEUE = "brokers"
DEADLETTER_STREAM = "DEADLETTER"
DEADLETTER_SUBJECT = "orcon.deadletter"

AUDIT_SUBJECT = "orcon.audit"
AUDIT_IN_SUBJECT = "orcon.auditin"
AUDIT_HEAD_SUBJECT = "orcon.audithead"
HEAD_REQUEST_SUBJECT = "orcon.audithead.request"


# Inside an agency's or the auditors' account, JetStream API calls (`$JS.API.…`, what
# every client library sends) are mapped to this prefix, under which the services
# account's API is imported: the server would otherwise answer `$JS.API` itself in an
# account without JetStream ("not enabled") before the import could.
JS_API = "$JS.API"
IMPORTED_JS_API = "ORCON.JS.API"


def _token(agency: str) -> str:
    # An id that is not a single safe token could widen a subscription (e.g. "A.>").
    if not AGENCY_ID_RE.match(agency):
        raise ValueError(f"agency id {agency!r} is not a valid subject token")
    return agency


def submit(agency: str) -> str:
    return f"orcon.submit.{_token(agency)}"


# Each agency's deliveries go on two subjects, both read by its inbox consumer
# (broker/routing/streams.delivery_consumer_configs). The acknowledgment watcher
# (broker/routing/acks.py) reads only the first, `deliver`: urgent originals,
# acknowledgment acts, its own reminders, and everything stored before deliveries were
# split (so an urgent message published by an earlier version is not forgotten). Every
# other delivery, nearly all of them, goes on `deliver_unwatched` and never reaches it.
DELIVER_WATCHED = "orcon.deliver.*"  # the watcher's filter: `deliver` of every agency
DELIVER_UNWATCHED = "orcon.deliver.*.unwatched"


def deliver(agency: str) -> str:
    """A delivery the acknowledgment watcher must see (broker/routing/acks.py)."""
    return f"orcon.deliver.{_token(agency)}"


def deliver_unwatched(agency: str) -> str:
    """A delivery the acknowledgment watcher has no use for: a routine message, a
    forward, any act other than an acknowledgment."""
    return f"{deliver(agency)}.unwatched"


def report(agency: str) -> str:
    return f"orcon.report.{_token(agency)}"


def resolve(agency: str) -> str:
    return f"orcon.resolve.{_token(agency)}"


def directory(agency: str) -> str:
    return f"orcon.directory.{_token(agency)}"


def inbox_prefix(agency: str) -> str:
    """Each principal gets its own reply-inbox prefix so no one can listen on another's."""
    return f"_INBOX.{_token(agency)}"


def service_inbox(user: str) -> str:
    """The reply-inbox prefix of a services user (its NATS user name): each service
    listens on its own, so one service's credential cannot read another's answers."""
    return f"_INBOX.{user.upper()}"


def submit_consumer(agency: str) -> str:
    """Brokers pull each agency's submissions through a consumer of its own, so one
    agency's backlog never stands in front of another's (broker/routing/fairness.py)."""
    return f"brokers-{_token(agency)}"


def inbox_consumer(agency: str) -> str:
    return f"inbox-{_token(agency)}"


def report_consumer(agency: str) -> str:
    return f"reports-{_token(agency)}"


def agency_of(subject: str) -> str:
    """The agency token of `orcon.<verb>.<agency>` (the last token)."""
    return subject.rsplit(".", 1)[-1]
