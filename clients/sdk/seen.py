"""The one record of the message ids already handed over (`AgencyClient.seen`).

Delivery is at least once, so the SDK hands each message over once by remembering its
id; `AgencyClient.open_delivery` alone asks. Who remembers:
- a set in memory (the default): while the process lives;
- `SeenIds`, a file: across restarts too. Ids older than the replay window can be
  forgotten: a message created before the window is refused on its `created_at` alone;
- `StoredIds`, a Holder's encrypted store: what is stored was handed over.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableSet
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from schemas.ids import message_id_time

if TYPE_CHECKING:
    from clients.sdk.store import Store


class SeenRecord(Protocol):
    """What `AgencyClient.open_delivery` asks of the record: was it handed over; add it."""

    def __contains__(self, item: object, /) -> bool: ...

    def add(self, value: str, /) -> None: ...


class SeenIds(MutableSet[str]):
    def __init__(self, path: Path, window: timedelta, now: datetime) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        horizon = now - window
        ids: set[str] = set()
        if self.path.exists():
            for line in self.path.read_text().split():
                try:
                    if message_id_time(line) >= horizon:
                        ids.add(line)
                except ValueError:
                    continue  # a torn last line after a crash
        self._ids = ids
        # Rewrite without forgotten ids, then append as ids arrive.
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(f"{i}\n" for i in sorted(ids)))
        os.replace(tmp, self.path)
        self._file = self.path.open("a")

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, value: str) -> None:
        if value in self._ids:
            return
        self._ids.add(value)
        self._file.write(value + "\n")
        # Flushed before the message is acknowledged to JetStream, so a crash cannot
        # lose the record of a message that will not be redelivered.
        self._file.flush()
        os.fsync(self._file.fileno())

    def discard(self, value: str) -> None:
        self._ids.discard(value)  # the file keeps it until the next rewrite; harmless

    def close(self) -> None:
        self._file.close()


class StoredIds:
    """The ids a Holder has stored: for a Holder, having handed a message over IS having
    stored it (it acknowledges a delivery only once stored), so its store is its record
    of what was seen. `add` records nothing: the store's row does, right after. Only
    asked (`in`), never listed: no scan of the store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and self._store.has(item)

    def add(self, value: str) -> None:
        pass  # the Holder stores the message itself, or leaves it for redelivery
