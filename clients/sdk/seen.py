"""Message ids already handed to the application, kept across restarts.

Delivery is at least once, so the SDK hands each message over once by remembering its
id. In memory that holds only while the process lives; this file-backed set makes it
hold across restarts too. Ids older than the replay window can be forgotten: a message
created before the window is refused on its `created_at` alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableSet
from datetime import datetime, timedelta
from pathlib import Path

from schemas.ids import message_id_time


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
