"""Child processes of `orcon bench`, so that what is measured runs as it would in
production: in a process of its own, on its own core when there is one.

    python -m bench.proc stack DATA_DIR FEDERATION   NATS + audit sequencer, no broker
    python -m bench.proc relay DATA_DIR IN OUT       the bare Python relay
    python -m bench.proc jsrelay DATA_DIR STREAM OUT the same hop on JetStream

(the relays dial DATA_DIR's stack with the brokers' credential)

Both print one line `READY ...` on stdout once they serve, and stop cleanly when their
standard input closes (the parent exited, even by SIGKILL) or on SIGTERM / SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg


def die_with_parent() -> None:
    """preexec_fn for children of `orcon bench`: SIGTERM when the parent dies (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop_event() -> asyncio.Event:
    """Set on SIGINT / SIGTERM, or when stdin reaches EOF (the parent closed it or died).
    The stdin reader is a daemon thread, so it never holds up the exit."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def watch() -> None:
        with contextlib.suppress(Exception):
            sys.stdin.buffer.read()
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()
    return stop


async def run_stack(data_dir: Path, federation: Path) -> None:
    from broker.hosting.stack import DevStack

    stop = _stop_event()
    async with DevStack(data_dir, federation, brokers=0, fast_kdf=True) as stack:
        assert stack.server is not None
        print(f"READY {stack.server.url}", flush=True)
        from broker.hosting import eventloop

        eventloop.settle_heap()  # as `orcon service` does once its sequencer is up
        await stop.wait()


async def _broker_dial(data_dir: Path, label: str, **options: Any) -> NATS:
    from broker.hosting.node import BROKER_NAME
    from transport.connection import connect_nats, load_connection

    conn = load_connection(data_dir)
    assert conn.broker_nkey is not None
    return await connect_nats(conn, BROKER_NAME, conn.broker_nkey, service=True, label=label,
                              **options)


async def run_relay(data_dir: Path, subject_in: str, subject_out: str) -> None:
    """Subscribe and republish: no cryptography, no policy, no JetStream. What one Python
    hop on nats-py can forward on this machine."""
    stop = _stop_event()
    nc = await _broker_dial(data_dir, "bench-relay", pending_size=256 * 1024 * 1024)
    publish = nc.publish

    async def forward(msg: object) -> None:
        await publish(subject_out, msg.data, headers=msg.headers)  # type: ignore[attr-defined]

    await nc.subscribe(subject_in, cb=forward, pending_msgs_limit=1_000_000,
                       pending_bytes_limit=1024 * 1024 * 1024)
    await nc.flush()
    print("READY relay", flush=True)
    await stop.wait()
    with contextlib.suppress(Exception):
        await nc.close()


async def run_js_relay(data_dir: Path, stream: str, subject_out: str) -> None:
    """The same hop on JetStream, shaped like the broker's loop: fetch a batch from a
    durable pull consumer, publish each message to a stream and wait for its
    acknowledgement, then acknowledge the input. Still no cryptography, no policy,
    no audit: one publish per message where the broker makes four."""
    from nats.errors import TimeoutError as NatsTimeoutError

    stop = _stop_event()
    nc = await _broker_dial(data_dir, "bench-jsrelay")
    js = nc.jetstream()
    sub = await js.pull_subscribe_bind("relay", stream)

    async def handle(msg: Msg) -> None:
        await js.publish(subject_out, msg.data, headers=msg.headers)
        await msg.ack()

    print("READY jsrelay", flush=True)
    while not stop.is_set():
        try:
            msgs = await sub.fetch(128, timeout=0.5)
        except (TimeoutError, NatsTimeoutError):
            continue
        await asyncio.gather(*(handle(m) for m in msgs))
    with contextlib.suppress(Exception):
        await nc.close()


def main(argv: list[str]) -> int:
    from clients.cli.logs import configure

    configure(level="WARNING")
    if len(argv) == 3 and argv[0] == "stack":
        from broker.hosting import eventloop

        eventloop.run(run_stack(Path(argv[1]), Path(argv[2])))  # ORCON_UVLOOP=1: uvloop
    elif len(argv) == 4 and argv[0] == "relay":
        asyncio.run(run_relay(Path(argv[1]), *argv[2:]))
    elif len(argv) == 4 and argv[0] == "jsrelay":
        asyncio.run(run_js_relay(Path(argv[1]), *argv[2:]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
