"""Log output of every Driftline process: one JSON object per line when not on a terminal,
readable colour when on one; the level from settings.

Whatever is bound with `bound_log_context` (mission, stage, event id) and the current
trace and span ids are added to every line emitted while a record or a request is
handled, including lines from libraries that log through the standard `logging` module.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from opentelemetry import trace

from driftline.settings import Settings


def _trace_ids(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    _trace_ids,
]


class RepeatedLines(logging.Filter):
    """Lets each of a library's log lines through once per `window_s`, counting the rest.

    While a broker is down, aiokafka logs the same connection error every 100 ms from
    each of its clients: the chaos run counted about a thousand ERROR lines per process
    for one 28-second Kafka restart. One line per window, saying how many like it were
    held back, tells an operator the same. Lines are alike when their logger and message
    template are (so a different node id or address still counts as the same line).
    """

    def __init__(
        self,
        loggers: tuple[str, ...] = ("aiokafka",),
        window_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._loggers = loggers
        self._window_s = window_s
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # -> (let through at, held)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._loggers):
            return True
        key = (record.name, str(record.msg))
        now = self._clock()
        let_through_at, held = self._seen.get(key, (-self._window_s, 0))
        if now - let_through_at < self._window_s:
            self._seen[key] = (let_through_at, held + 1)
            return False
        if len(self._seen) > 1000:  # templates are few; messages built with f-strings are not
            self._seen.clear()
        self._seen[key] = (now, 0)
        if held and isinstance(record.msg, str):
            record.msg = (
                f"{record.msg} (and {held} more like it in the last {self._window_s:.0f} s)"
            )
        return True


def configure_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Route structlog and the standard library through one renderer at one level."""
    out = stream or sys.stderr
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if out.isatty() else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[*SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *SHARED_PROCESSORS],
        )
    )
    handler.addFilter(RepeatedLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


@contextmanager
def bound_log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every log line of the current task while inside the block."""
    with structlog.contextvars.bound_contextvars(**fields):
        yield
