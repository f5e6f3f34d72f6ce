"""JetStream streams and durable consumers (idempotent: safe on every broker start)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

from transport import subjects as s

# The window in which a resubmitted message id is recognised and dropped by the server.
DEDUPE_WINDOW_S = 10 * 60.0


# Per-agency quota of submissions waiting for a broker: each agency submits on its own
# subject, so a per-subject limit with "discard new per subject" refuses the flooding
# agency's next submission (the server answers its publish with an error) and nobody
# else's. Storage in the services account is thereby bounded per agency.
MAX_PENDING_SUBMISSIONS = 100_000


def stream_configs(
    replicas: int = 1,
    max_msg_size: int = 8 * 1024 * 1024,
    max_pending_submissions: int = MAX_PENDING_SUBMISSIONS,
) -> list[StreamConfig]:
    return [
        StreamConfig(
            name=s.SUBMIT_STREAM,
            subjects=["orcon.submit.*"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=DEDUPE_WINDOW_S,
            num_replicas=replicas,
            max_msg_size=max_msg_size,
            discard=DiscardPolicy.NEW,
            max_msgs_per_subject=max_pending_submissions,
            discard_new_per_subject=True,
        ),
        StreamConfig(
            name=s.DELIVER_STREAM,
            subjects=["orcon.deliver.*", "orcon.report.*"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=DEDUPE_WINDOW_S,
            num_replicas=replicas,
            max_msg_size=max_msg_size,
        ),
        StreamConfig(
            name=s.AUDIT_STREAM,
            subjects=[s.AUDIT_SUBJECT],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=DEDUPE_WINDOW_S,
            num_replicas=replicas,
            deny_delete=True,
            deny_purge=True,
            discard=DiscardPolicy.NEW,
        ),
        StreamConfig(
            # Brokers' events wait here for the single sequencer (broker/audit/sequencer.py).
            name=s.AUDIT_IN_STREAM,
            subjects=[s.AUDIT_IN_SUBJECT],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=DEDUPE_WINDOW_S,
            num_replicas=replicas,
        ),
        StreamConfig(
            # Submissions no broker could finish (broker/routing/deadletter.py), for operators:
            # bounded, oldest dropped first; every one is also in the audit log.
            name=s.DEADLETTER_STREAM,
            subjects=[s.DEADLETTER_SUBJECT],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=replicas,
            max_msgs=100_000,
            max_bytes=1024**3,
            discard=DiscardPolicy.OLD,
        ),
        StreamConfig(
            name=s.AUDIT_HEAD_STREAM,
            subjects=[s.AUDIT_HEAD_SUBJECT],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=replicas,
            deny_delete=True,
            deny_purge=True,
        ),
    ]


async def ensure_streams(
    js: JetStreamContext, replicas: int = 1,
    max_pending_submissions: int = MAX_PENDING_SUBMISSIONS,
) -> None:
    for cfg in stream_configs(replicas, max_pending_submissions=max_pending_submissions):
        try:
            await js.add_stream(cfg)
        except BadRequestError:
            await js.update_stream(cfg)


# How often JetStream hands one submission to a broker before giving up on it. Routing
# never raises (a failure becomes a typed `internal` rejection); what is left are
# stores refusing the result. After the last attempt the broker moves the submission to
# the dead-letter stream (broker/routing/deadletter.py) and acknowledges it.
SUBMIT_MAX_DELIVER = 5
# Submissions of one agency in a broker's hands at once (fetched, not yet acknowledged).
SUBMIT_MAX_ACK_PENDING = 2_000
LEGACY_SUBMIT_CONSUMER = "brokers"


def submit_consumer_config(agency: str, ack_wait_s: float = 30.0) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=s.submit_consumer(agency),
        filter_subject=s.submit(agency),
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_deliver=SUBMIT_MAX_DELIVER,
        max_ack_pending=SUBMIT_MAX_ACK_PENDING,
    )


def delivery_consumer_configs(agency: str, ack_wait_s: float = 30.0) -> list[ConsumerConfig]:
    """The agency's two durable consumers on DELIVER: its inbox and its reports."""
    return [
        ConsumerConfig(durable_name=name, filter_subject=subject,
                       ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait_s)
        for name, subject in ((s.inbox_consumer(agency), s.deliver(agency)),
                              (s.report_consumer(agency), s.report(agency)))
    ]


async def ensure_consumers(
    js: JetStreamContext, agencies: Iterable[str], ack_wait_s: float = 30.0
) -> None:
    """Durable pull consumers are created here, by the broker, so agencies need no
    permission to create consumers (which would let them pick any filter subject)."""
    # Stores written before per-agency consumers have one unfiltered `brokers`
    # consumer, which a work queue does not allow next to filtered ones. Deleting it
    # returns its unacknowledged submissions to the stream, for the new consumers.
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(s.SUBMIT_STREAM, LEGACY_SUBMIT_CONSUMER)
    for agency in agencies:
        await js.add_consumer(s.SUBMIT_STREAM, submit_consumer_config(agency, ack_wait_s))
        for config in delivery_consumer_configs(agency, ack_wait_s):
            await js.add_consumer(s.DELIVER_STREAM, config)


def ack_watch_consumer_config() -> ConsumerConfig:
    """The acknowledgment watcher's ordered consumer on DELIVER (broker/routing/acks.py):
    headers only. The broker labels each delivery with what the watcher needs, so the
    payloads (every delivery of the federation) never reach the watcher's process."""
    return ConsumerConfig(headers_only=True)
