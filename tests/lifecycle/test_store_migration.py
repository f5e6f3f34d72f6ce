"""A store written before `opened` existed is migrated: what was acknowledged or sent
counts as read; what a command stored silently is unread, so the next inbox shows it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from clients.sdk.store import Record, Store
from keys.identity import Identity
from schemas import encode, examples

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_store_without_opened_column_is_migrated(tmp_path: Path) -> None:
    ident = Identity.generate("KH-AHTJP", now=NOW)
    path = tmp_path / "KH-AHTJP.db"
    store = Store(path, ident)
    ids = []
    for n, direction in enumerate(("in", "in", "out")):
        body = examples.mekong_route_report()
        header = examples.example_header(body, message_id=f"01JPA7Q5K3M4N5P6Q7R8S9T0V{n}")
        store.put(direction=direction, header=header,
                  record=Record(header=encode(header), body=encode(body)), received_at=NOW)
        ids.append(header.id)
    store.mark(ids[0], acked=1)
    store.close()
    with sqlite3.connect(path) as db:  # the table as it was before the column existed
        db.execute("ALTER TABLE messages DROP COLUMN opened")
    store = Store(path, ident)
    try:
        assert [r.id for r in store.query("opened = 0")] == [ids[1]]
        row = store.get(ids[1])
        assert row is not None and row.body == examples.mekong_route_report()
    finally:
        store.close()
