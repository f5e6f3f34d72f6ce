"""Health, readiness and Prometheus metrics over HTTP (asyncio, stdlib only).

    /healthz  200 when the NATS connection is up and the `brokers` consumer answers;
              503 otherwise (a supervisor restarts the process after repeated 503s).
    /readyz   200 while the broker takes work; 503 before start and while draining, so
              a load balancer or orchestrator stops counting on a process being stopped.
    /metrics  Prometheus exposition of the broker's registry, with the consumer lag
              (pending submissions) refreshed at each scrape.

The server answers GET and HEAD only, reads at most a small request head and closes
every connection after one response: it is an operator's endpoint, not a web server.
It never exposes content: only counts, timings and rule names.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

import structlog
from nats.aio.client import Client as NATS
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from broker.metrics import Metrics
from broker.routing.fairness import queue_state

log = structlog.get_logger("orcon.health")

MAX_HEAD = 8192
READ_TIMEOUT_S = 5.0
NATS_TIMEOUT_S = 2.0


class HealthServer:
    def __init__(
        self,
        nc: NATS,
        metrics: Metrics,
        *,
        ready: Callable[[], bool],
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.nc = nc
        self.metrics = metrics
        self.ready = ready
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self.pending = Gauge(
            "orcon_consumer_pending",
            "Submissions waiting in the agencies' submit consumers (not yet given to a broker)",
            registry=metrics.registry,
        )
        self.ack_pending = Gauge(
            "orcon_consumer_ack_pending",
            "Submissions handed to a broker and not yet acknowledged",
            registry=metrics.registry,
        )
        self.redelivered = Gauge(
            "orcon_consumer_redelivered",
            "Deliveries of submissions beyond their first so far (a broker failed or was slow)",
            registry=metrics.registry,
        )
        self.nats_connected = Gauge(
            "orcon_nats_connected", "1 when the broker's NATS connection is up",
            registry=metrics.registry,
        )

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        # Port 0 asks the kernel for a free port; report the real one.
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info("http_started", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2)
            self._server = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- checks --------------------------------------------------------------------

    async def _consumer(self) -> tuple[bool, str]:
        if not self.nc.is_connected:
            self.nats_connected.set(0)
            return False, "NATS is not connected"
        self.nats_connected.set(1)
        try:
            state = await asyncio.wait_for(queue_state(self.nc.jetstream()),
                                           timeout=2 * NATS_TIMEOUT_S)
        except Exception as exc:  # timeout, no responders, JetStream unavailable
            return False, f"the submission consumers are unreachable ({type(exc).__name__})"
        self.pending.set(state.pending)
        self.ack_pending.set(state.ack_pending)
        self.redelivered.set(state.redelivered)
        return True, "ok"

    async def _response(self, path: str) -> tuple[int, str, bytes]:
        if path == "/healthz":
            ok, why = await self._consumer()
            return _json(200 if ok else 503, {"status": "ok" if ok else "fail", "reason": why})
        if path == "/readyz":
            ok = self.ready() and self.nc.is_connected
            return _json(200 if ok else 503, {"status": "ready" if ok else "not ready"})
        if path == "/metrics":
            # A scrape during a NATS outage still returns the counters; the lag gauges
            # keep their last value and orcon_nats_connected says why.
            await self._consumer()
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)
        return _json(404, {"status": "not found", "paths": ["/healthz", "/readyz", "/metrics"]})

    # ---- HTTP ----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            if len(head) > MAX_HEAD:
                status, ctype, body = _json(431, {"status": "request head too large"})
                method = "GET"
            else:
                parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
                method = parts[0] if parts else ""
                target = parts[1] if len(parts) > 1 else "/"
                if method not in ("GET", "HEAD"):
                    status, ctype, body = _json(405, {"status": "method not allowed"})
                else:
                    status, ctype, body = await self._response(target.split("?", 1)[0])
            writer.write(
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\nConnection: close\r\n\r\n".encode()
            )
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except Exception as exc:  # a misbehaving client never takes the endpoint down
            log.warning("http_error", error=type(exc).__name__)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed",
            431: "Request Header Fields Too Large", 503: "Service Unavailable"}


def _json(status: int, obj: dict[str, object]) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(obj).encode() + b"\n"
