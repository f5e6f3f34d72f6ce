"""An agency's local message store: SQLite, every message encrypted at rest.

Index columns (id, direction, kind, sender, the message an act or reply is about,
expiry, deadline) are metadata the agency needs to query without decrypting; the
header, body and delivered envelope are one ChaCha20-Poly1305 blob per row, associated
data = the row id, so a blob cannot be swapped between rows.

Key hierarchy: a random data key encrypts the rows; it is stored wrapped under a key
derived (HKDF) from the agency identity's signing secret (`Identity.storage_keys`). After
a signing-key rotation the data key is unwrapped with the older key (kept during the
overlap) and re-wrapped with the current one, so no row needs re-encryption.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

import schemas
from keys.errors import CryptoError
from keys.identity import Identity
from schemas.message import Message, header_hash, parse_message

STORE_LABEL = b"orcon/v1/store"
_DEK_AD = b"orcon/v1/store-dek"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    direction TEXT NOT NULL,          -- 'in' (received) or 'out' (sent by this agency)
    kind TEXT NOT NULL,
    sender TEXT NOT NULL,
    about TEXT,                       -- act: the information acted on; else in_reply_to
    received_at INTEGER NOT NULL,     -- epoch microseconds (sortable, unlike ISO strings)
    expires_at INTEGER,               -- end of retention: expires_at or destroy_after_days
    due_at INTEGER,                   -- requests: when a reply is due
    answered_at INTEGER,              -- requests: first reply that answers it
    acked INTEGER NOT NULL DEFAULT 0,
    reminders INTEGER NOT NULL DEFAULT 0,
    blob BLOB NOT NULL,
    opened INTEGER NOT NULL DEFAULT 0 -- shown to the agency (inbox, alerts watch, an act)
);
CREATE INDEX IF NOT EXISTS messages_kind ON messages(kind);
CREATE INDEX IF NOT EXISTS messages_sender ON messages(sender);
CREATE INDEX IF NOT EXISTS messages_about ON messages(about);
CREATE INDEX IF NOT EXISTS messages_expires ON messages(expires_at);
"""


def micros(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def from_micros(v: int) -> datetime:
    return datetime.fromtimestamp(v / 1_000_000, UTC)


class Record(msgspec.Struct, frozen=True, omit_defaults=True):
    """The encrypted part of a row."""

    header: bytes  # the signed header bytes
    body: bytes  # msgpack body
    envelope: bytes = b""  # as received (to forward it); as sealed, for sent messages
    via: bytes = b""  # forwarded copies: the forwarder's notice envelope (no stanzas)
    # Forwarded copies: as tightened by the forwarder; amended messages: as amended by
    # the originator (both only ever tighter than the signed header's).
    restrictions: schemas.Restrictions | None = None
    # Sent messages: who the resolver refused before sealing, and the broker's outcome
    # (delivered / refused per recipient) once it arrives.
    refused: list[schemas.Refusal] = []
    outcome: schemas.Outcome | None = None
    # Urgent sent messages: recipients that have not acknowledged in time (ack.overdue).
    overdue: list[schemas.Refusal] = []


@dataclass(frozen=True)
class Row:
    """One stored message. The encrypted record is opened on first use and each part
    (record, header, body, parsed envelopes) decoded at most once per Row: a query that
    only reads the index columns decrypts nothing."""

    id: str
    direction: str
    kind: str
    sender: str
    about: str | None
    received_at: datetime
    expires_at: datetime | None
    due_at: datetime | None
    answered_at: datetime | None
    acked: bool
    reminders: int
    opened: bool
    sealed: bytes = field(repr=False)  # the record, encrypted (equal bytes: equal records)
    aead: ChaCha20Poly1305 | None = field(default=None, repr=False, compare=False)

    @cached_property
    def record(self) -> Record:
        assert self.aead is not None, "a Row built without its record needs the store's key"
        return msgspec.msgpack.decode(_open_raw(self.aead, self.sealed, self.id.encode()),
                                      type=Record)

    @cached_property
    def header(self) -> schemas.Header:
        if "message" in self.__dict__:
            return self.message.header
        return schemas.decode_header(self.record.header)

    @cached_property
    def body(self) -> schemas.Body:
        return schemas.decode_body(self.record.body)

    @cached_property
    def message(self) -> Message:
        """The stored envelope, parsed (received: as delivered; sent: as sealed). The
        header, when this Row has decoded it already from the same bytes, is reused."""
        record = self.record
        if "header" in self.__dict__:
            envelope = schemas.decode_envelope(record.envelope)
            if envelope.header == record.header:
                return Message(data=record.envelope, envelope=envelope, header=self.header,
                               header_hash=header_hash(envelope.header))
        return parse_message(record.envelope)

    @cached_property
    def notice(self) -> Message | None:
        """A forwarded copy: the forwarder's signed notice naming this agency."""
        return parse_message(self.record.via) if self.record.via else None

    @property
    def restrictions(self) -> schemas.Restrictions:
        """What binds this agency: the forwarder's tightened restrictions for a forwarded
        copy, otherwise the originator's signed ones."""
        return self.record.restrictions or self.header.restrictions

    def with_flags(self, **flags: bool | int) -> Row:
        """This row with changed index columns, keeping what it has decoded."""
        row = replace(self, **flags)  # type: ignore[arg-type]
        row.__dict__.update({k: v for k, v in self.__dict__.items() if k in _DECODED})
        return row

    def known(self, **decoded: object) -> Row:
        """Seed what the caller already holds decoded (it is these bytes): never again."""
        assert set(decoded) <= _DECODED
        self.__dict__.update(decoded)
        return self


_DECODED = frozenset({"record", "header", "body", "message", "notice"})


class Store:
    def __init__(self, path: Path, identity: Identity) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = not self.path.exists()
        self.db = sqlite3.connect(self.path)
        if fresh:
            self.path.chmod(0o600)
        self.db.executescript(_SCHEMA)
        self._migrate()
        self._aead = ChaCha20Poly1305(self._data_key(identity))

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        cols = {r[1] for r in self.db.execute("PRAGMA table_info(messages)")}
        if "opened" not in cols:
            # Stores written before `opened` existed: what was acknowledged or sent was
            # seen; everything else was stored silently and is shown by the next inbox.
            with self.db:
                self.db.execute("ALTER TABLE messages ADD COLUMN opened INTEGER NOT NULL "
                                "DEFAULT 0")
                self.db.execute("UPDATE messages SET opened = 1 WHERE acked = 1 OR "
                                "direction = 'out'")

    def _data_key(self, identity: Identity) -> bytes:
        keks = identity.storage_keys(STORE_LABEL)
        row = self.db.execute("SELECT v FROM meta WHERE k = 'dek'").fetchone()
        if row is None:
            dek = os.urandom(32)
        else:
            for i, kek in enumerate(keks):
                try:
                    dek = _open(kek, row[0], _DEK_AD)
                except CryptoError:
                    continue
                if i == 0:
                    return dek
                break  # opened with an older key: re-wrap under the current one
            else:
                raise CryptoError()
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('dek', ?)",
                            (_seal(keks[0], dek, _DEK_AD),))
        return dek

    # ---- rows -------------------------------------------------------------------------

    def has(self, message_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM messages WHERE id = ?",
                               (message_id,)).fetchone() is not None

    def put(self, *, direction: str, header: schemas.Header, record: Record,
            received_at: datetime, due_at: datetime | None = None) -> Row | None:
        """Store a message; the Row as stored (`record` and `header` known, so never
        decrypted or decoded again), or None when a row with this id exists already."""
        ends = _retention_end(record.restrictions or header.restrictions, received_at)
        # An act (a consent decision too) is about the information it acts on.
        about = header.act.message_id if header.act is not None else header.in_reply_to
        blob = _seal_raw(self._aead, msgspec.msgpack.encode(record), header.id.encode())
        opened = direction == "out"
        with self.db:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO messages (id, direction, kind, sender, about, "
                "received_at, expires_at, due_at, blob, opened) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (header.id, direction, header.kind, header.sender, about, micros(received_at),
                 micros(ends) if ends else None,
                 micros(due_at) if due_at is not None else None, blob, int(opened)))
        if cur.rowcount != 1:
            return None
        # Times as read back from the store (microseconds), so the Row equals a `get`.
        return Row(id=header.id, direction=direction, kind=header.kind, sender=header.sender,
                   about=about, received_at=from_micros(micros(received_at)),
                   expires_at=from_micros(micros(ends)) if ends else None,
                   due_at=from_micros(micros(due_at)) if due_at is not None else None,
                   answered_at=None, acked=False, reminders=0, opened=opened, sealed=blob,
                   aead=self._aead).known(record=record, header=header)

    def replace_record(self, row: Row, record: Record) -> None:
        """Re-seal a row's record (an outcome arrived, an amendment applied); the end of
        retention follows the record's restrictions."""
        ends = _retention_end(record.restrictions or row.header.restrictions,
                              row.received_at)
        blob = _seal_raw(self._aead, msgspec.msgpack.encode(record), row.id.encode())
        with self.db:
            self.db.execute("UPDATE messages SET blob = ?, expires_at = ? WHERE id = ?",
                            (blob, micros(ends) if ends else None, row.id))

    def senders(self) -> set[str]:
        """Every sender of a stored message (an index column: nothing is decrypted)."""
        return {str(r[0]) for r in self.db.execute("SELECT DISTINCT sender FROM messages")}

    def get(self, message_id: str) -> Row | None:
        cur = self.db.execute(f"SELECT {_COLS} FROM messages WHERE id = ?", (message_id,))
        row = cur.fetchone()
        return self._row(row) if row else None

    def query(self, where: str = "1", params: tuple[object, ...] = ()) -> Iterator[Row]:
        """Rows matching an SQL condition on the index columns (callers pass constants and
        bind values, never user text, as `where`)."""
        cur = self.db.execute(
            f"SELECT {_COLS} FROM messages WHERE {where} ORDER BY received_at, id", params)
        for row in cur.fetchall():
            yield self._row(row)

    def mark(self, message_id: str, **values: object) -> None:
        allowed = {"acked", "reminders", "answered_at", "opened"}
        assert set(values) <= allowed, "only life-cycle columns are updated"
        sets = ", ".join(f"{k} = ?" for k in values)
        with self.db:
            self.db.execute(f"UPDATE messages SET {sets} WHERE id = ?",
                            (*values.values(), message_id))

    def delete(self, message_id: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def _row(self, r: tuple[object, ...]) -> Row:
        (mid, direction, kind, sender, about, received, expires, due, answered, acked,
         reminders, opened, blob) = r
        assert isinstance(mid, str) and isinstance(blob, bytes)
        return Row(
            id=mid, direction=str(direction), kind=str(kind), sender=str(sender),
            about=about if isinstance(about, str) else None,
            received_at=from_micros(int(received)),  # type: ignore[call-overload]
            expires_at=from_micros(expires) if isinstance(expires, int) else None,
            due_at=from_micros(due) if isinstance(due, int) else None,
            answered_at=from_micros(answered) if isinstance(answered, int) else None,
            acked=bool(acked), reminders=int(reminders),  # type: ignore[call-overload]
            opened=bool(opened), sealed=blob, aead=self._aead,
        )


_COLS = ("id, direction, kind, sender, about, received_at, expires_at, due_at, answered_at, "
         "acked, reminders, opened, blob")


def _retention_end(r: schemas.Restrictions, received_at: datetime) -> datetime | None:
    """Expiry = `expires_at` or `received_at + destroy_after_days`, whichever first."""
    ends = [t for t in (r.expires_at,) if t is not None]
    if r.destroy_after_days is not None:
        ends.append(received_at + timedelta(days=r.destroy_after_days))
    return min(ends) if ends else None


def _seal_raw(aead: ChaCha20Poly1305, data: bytes, ad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + aead.encrypt(nonce, data, ad)


def _open_raw(aead: ChaCha20Poly1305, blob: bytes, ad: bytes) -> bytes:
    try:
        return aead.decrypt(blob[:12], blob[12:], ad)
    except (InvalidTag, ValueError):
        raise CryptoError() from None


def _seal(key: bytes, data: bytes, ad: bytes) -> bytes:
    return _seal_raw(ChaCha20Poly1305(key), data, ad)


def _open(key: bytes, blob: bytes, ad: bytes) -> bytes:
    return _open_raw(ChaCha20Poly1305(key), blob, ad)
