"""The one owner of deduplication: which (sender, message id) carries which header.

A message id is the sender's claim to one message. The first submission a broker routes
under (sender, id) records its header hash in a JetStream key-value bucket shared by
every broker (`create` succeeds for exactly one writer). A later submission under the
same (sender, id):
- with the same header hash is the same message again (a network retry, a broker
  redelivery): it is routed again, and every delivery, outcome and audit event it
  produces carries the same `Nats-Msg-Id` (`key`), which JetStream drops as duplicates;
- with another header hash is a reused id: refused with `dedupe.reused-id` and audited,
  never delivered (before, its deliveries went out while its audit events were dropped
  as duplicates of the first message's).

The record lives `TTL`, longer than the broker accepts a `created_at` (service.py), so
within the window in which a reused id could be routed at all, it is recognised.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from enum import Enum

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from transport import subjects as s
from transport.jspub import AckPublisher, Outgoing, PublishNotAcknowledged

BUCKET = "orcon-message-ids"
TTL = timedelta(minutes=30)
_WRONG_LAST_SEQUENCE = 10071  # JetStream's error code: the key exists already
_FIRST_WRITE = {"Nats-Expected-Last-Subject-Sequence": "0"}


class Claim(Enum):
    NEW = "new"
    SAME = "same"  # the same message again
    CONFLICT = "conflict"  # the id was used for another message


def key(sender: str, message_id: str, header_hash: str, what: str) -> str:
    """The `Nats-Msg-Id` of everything one message produces (`what`: `submitted`,
    `delivered:KH-AHTJP`, `outcome`...). Keyed on all three, so two messages can never
    share a key, and one message always produces the same keys."""
    return f"{sender}:{message_id}:{header_hash[:32]}:{what}"


class MessageIds:
    """`pub`: when given, a first claim is one pipelined publish (transport/jspub.py)
    instead of nats-py's request with its timer and JSON parse; the same condition
    (`Nats-Expected-Last-Subject-Sequence: 0`, what `KeyValue.create` sends), so
    exactly one writer still wins."""

    def __init__(self, js: JetStreamContext, pub: AckPublisher | None = None) -> None:
        self.js = js
        self._pub = pub
        self._kv: KeyValue | None = None

    async def start(self) -> None:
        # Replicated like the submissions it guards: in a cluster, losing one node must
        # not stop routing.
        submit = await self.js.stream_info(s.SUBMIT_STREAM)
        self._kv = await self.js.create_key_value(KeyValueConfig(
            bucket=BUCKET, history=1, ttl=TTL.total_seconds(), storage=StorageType.FILE,
            replicas=submit.config.num_replicas or 1))

    async def claim_all(self, idents: list[tuple[str, str, str] | None]
                        ) -> list[Claim | Exception | None]:
        """`claim` for many at once: the first claims pipelined, waited for together;
        for each, its Claim, None (nothing to claim), or the error that stopped it."""
        if self._pub is None:
            return [await self._claim_one(i) for i in idents]
        sent: list[asyncio.Future[None] | Exception | None] = [None] * len(idents)
        todo = [(n, ident) for n, ident in enumerate(idents) if ident is not None]
        try:
            futures = await self._pub.publish_many([self._claim_message(*i) for _, i in todo])
        except Exception:
            # One claim that cannot be sent (say, a subject it cannot name) must not stop
            # the others: each alone, each with its own error.
            futures = []
        if len(futures) == len(todo):
            for (n, _), claim in zip(todo, futures, strict=True):
                sent[n] = claim
        else:
            for n, one in todo:
                try:
                    sent[n] = await self._send_claim(*one)
                except Exception as exc:
                    sent[n] = exc
        out: list[Claim | Exception | None] = []
        for ident, fut in zip(idents, sent, strict=True):
            if fut is None or isinstance(fut, Exception):
                out.append(fut)
                continue
            assert ident is not None
            try:
                await self._pub.wait([fut])
                out.append(Claim.NEW)
            except PublishNotAcknowledged as exc:
                if exc.err_code != _WRONG_LAST_SEQUENCE:
                    out.append(exc)
                    continue
                out.append(await self._claim_one(ident, fast=False))
            except Exception as exc:
                out.append(exc)
        return out

    async def _claim_one(self, ident: tuple[str, str, str] | None,
                         fast: bool = True) -> Claim | Exception | None:
        if ident is None:
            return None
        try:
            return await (self.claim(*ident) if fast else self._claim_kv(*ident))
        except Exception as exc:
            return exc

    async def _send_claim(self, sender: str, message_id: str,
                          header_hash: str) -> asyncio.Future[None]:
        assert self._pub is not None
        return await self._pub.publish(*self._claim_message(sender, message_id, header_hash))

    @staticmethod
    def _claim_message(sender: str, message_id: str, header_hash: str) -> Outgoing:
        # Stored only if the key has never been written: a first claim.
        return (f"$KV.{BUCKET}.{sender}.{message_id}", header_hash.encode(), None,
                _FIRST_WRITE)

    async def claim(self, sender: str, message_id: str, header_hash: str) -> Claim:
        assert self._kv is not None, "MessageIds.start() first"
        if self._pub is not None:
            try:
                await self._pub.wait([await self._send_claim(sender, message_id, header_hash)])
                return Claim.NEW
            except PublishNotAcknowledged as exc:
                if exc.err_code != _WRONG_LAST_SEQUENCE:
                    raise
            # Claimed before (or deleted since): the full KeyValue path below decides.
        return await self._claim_kv(sender, message_id, header_hash)

    async def _claim_kv(self, sender: str, message_id: str, header_hash: str) -> Claim:
        assert self._kv is not None, "MessageIds.start() first"
        name = f"{sender}.{message_id}"
        value = header_hash.encode()
        try:
            await self._kv.create(name, value)
            return Claim.NEW
        except KeyWrongLastSequenceError:
            entry = await self._kv.get(name)
            return Claim.SAME if entry.value == value else Claim.CONFLICT
