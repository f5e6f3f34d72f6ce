"""The auditor's side: download the audit log and its signed heads for offline checks.

An auditor trusts neither the broker nor the transport: the log key comes from the key
directory, verified against the pinned federation root, and `orcon audit verify`
recomputes everything from the downloaded bundle.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from broker.audit.heads import SignedTreeHead
from broker.audit.store import write_bundle
from clients.sdk.client import fetch_directory
from transport import subjects as s
from transport.connection import Connection, connect_nats

LOG_AGENCY = "ORCON-LOG"
_CONCURRENCY = 64


async def _read_stream(
    js: JetStreamContext, stream: str, progress: Callable[[int, int], None] | None = None
) -> list[bytes]:
    """Every message of `stream` in sequence order, by direct sequence reads (the
    auditor's credentials allow reading, never creating consumers or deleting)."""
    info = await js.stream_info(stream)
    first, last = info.state.first_seq, info.state.last_seq
    if last == 0:
        return []
    out: list[bytes] = []
    for start in range(first, last + 1, _CONCURRENCY):
        seqs = range(start, min(start + _CONCURRENCY, last + 1))
        msgs = await asyncio.gather(*(js.get_msg(stream, seq) for seq in seqs))
        out.extend(m.data or b"" for m in msgs)
        if progress:
            progress(len(out), last - first + 1)
    return out


async def fetch_bundle(
    conn: Connection,
    auditor: str,
    out_dir: Path,
    *,
    request_head: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Write entries, signed heads and the log key to `out_dir`; returns (entries, heads)."""
    creds = conn.credentials(auditor)
    nc: NATS = await connect_nats(conn, auditor, creds.nkey)
    try:
        directory = await fetch_directory(nc, auditor, bytes.fromhex(conn.root_public))
        entry = directory.entry(LOG_AGENCY)
        if request_head:
            # A fresh head covering everything so far; older heads stay in the stream.
            await nc.request(s.HEAD_REQUEST_SUBJECT, b"", timeout=5)
        js = nc.jetstream(timeout=10)
        heads_raw = await _read_stream(js, s.AUDIT_HEAD_STREAM)
        entries = await _read_stream(js, s.AUDIT_STREAM, progress)
    except NotFoundError:
        raise LookupError("the audit streams do not exist on this server") from None
    finally:
        await nc.close()
    heads = [SignedTreeHead.from_json(json.loads(h)) for h in heads_raw]
    # A head may cover entries appended after our read began; keep those we can check.
    heads = [h for h in heads if h.size <= len(entries)]
    keys = {k.key_id: k.public for k in entry.sign_keys}
    head_keys = {h.key_id for h in heads}
    unknown = head_keys - set(keys)
    if unknown:
        raise LookupError(f"heads signed by keys the directory does not list: {sorted(unknown)}")
    log_key = keys[heads[-1].key_id] if heads else entry.sign_keys[-1].public
    write_bundle(out_dir, entries, heads, log_key)
    return len(entries), len(heads)
