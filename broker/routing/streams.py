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
            subjects=[s.DELIVER_WATCHED, s.DELIVER_UNWATCHED, "orcon.report.*"],
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
            if cfg.name == s.DELIVER_STREAM:
                await split_inbox_consumers(js)
            await js.update_stream(cfg)


async def split_inbox_consumers(js: JetStreamContext) -> list[str]:
    """Give every inbox consumer made before deliveries were split (filtering
    `deliver(agency)` alone) both of its agency's delivery subjects; returns their names.

    Called before the DELIVER stream is updated to accept the second subject: a consumer
    skips what is stored behind its position, so a delivery on `deliver_unwatched` must
    never be stored before its inbox consumer reads that subject. What the consumer has
    not yet delivered or had acknowledged stays as it was; its other settings too."""
    migrated: list[str] = []
    offset = 0
    while True:
        page = await js.consumers_info(s.DELIVER_STREAM, offset=offset)
        if not page:
            return migrated
        offset += len(page)
        for info in page:
            cfg = info.config
            name = cfg.durable_name or cfg.name or ""
            agency = _inbox_agency(name)
            if agency is None or cfg.filter_subject != s.deliver(agency):
                continue
            await js.add_consumer(s.DELIVER_STREAM, cfg.evolve(
                filter_subject=None,
                filter_subjects=[s.deliver(agency), s.deliver_unwatched(agency)]))
            migrated.append(name)


def _inbox_agency(consumer: str) -> str | None:
    """The agency whose inbox consumer this is, or None for any other consumer."""
    agency = consumer.partition("-")[2]
    if s.AGENCY_ID_RE.match(agency) and s.inbox_consumer(agency) == consumer:
        return agency
    return None


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
    """The agency's two durable consumers on DELIVER: its inbox (both its delivery
    subjects: transport/subjects.py) and its reports."""
    return [
        ConsumerConfig(durable_name=s.inbox_consumer(agency),
                       filter_subjects=[s.deliver(agency), s.deliver_unwatched(agency)],
                       ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait_s),
        ConsumerConfig(durable_name=s.report_consumer(agency),
                       filter_subject=s.report(agency),
                       ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait_s),
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


async def ensure_delivery_consumers(
    js: JetStreamContext, agencies: Iterable[str], ack_wait_s: float = 30.0
) -> None:
    """The delivery consumers of agencies joining a running federation, made by the
    brokers; one that exists already is left as it is (its settings are the sequencer's)."""
    for agency in agencies:
        for config in delivery_consumer_configs(agency, ack_wait_s):
            assert config.durable_name is not None
            try:
                await js.consumer_info(s.DELIVER_STREAM, config.durable_name)
            except NotFoundError:
                await js.add_consumer(s.DELIVER_STREAM, config)


def ack_watch_consumer_config() -> ConsumerConfig:
    """The acknowledgment watcher's ordered consumer on DELIVER (broker/routing/acks.py):
    headers only, of the deliveries it watches (`transport.subjects.DELIVER_WATCHED`).
    The broker labels each with what the watcher needs, so no payload reaches the
    watcher's process, and of the deliveries it does not watch not even a header."""
    return ConsumerConfig(headers_only=True)
