"""structlog configuration shared by every orcon process.

Events carry ids, agency names, rules and counts; never bodies, passphrases or keys
(the code that logs passes only those). JSON for services, a console renderer for
people, and a level filter so the demo's transcript is not drowned in service logs.
"""

from __future__ import annotations

import logging
import sys

import structlog


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
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
