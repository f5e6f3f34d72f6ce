"""structlog configuration shared by every orcon process.

Events carry ids, agency names, rules and counts; never bodies, passphrases or keys
(the code that logs passes only those). JSON for services, a console renderer for
people, and a level filter so the demo's transcript is not drowned in service logs.
"""

from __future__ import annotations

import logging
import sys

import structlog


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of the write. Binding the stream
    object at configure() time made every later log call raise once that object was
    closed (a test's captured stderr, a replaced stream), and a service task that logs
    an error then died of the logging instead of carrying on."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(*, json: bool = False, level: str = "INFO") -> None:
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    # asyncio warns on every TLS connection nats-py closes ("returning true from
    # eof_received() has no effect when using ssl"): noise, not a fault.
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
