"""What the command line says when something expected goes wrong.

Every expected failure (the API unreachable or refusing, a file that cannot be read, the
local services not running, a port already taken) ends as one or two sentences on stderr
and a non-zero exit, never a traceback: `CliError` carries the sentences, and `explain`
words Driftline's own errors and a few standard ones. `report` is called once, by the
entry point (`cli/main.py: main`); `--debug` shows the traceback as well.
"""

from __future__ import annotations

import sys
import traceback
from typing import TextIO
from urllib.parse import urlsplit

from driftline.errors import (
    BrokerUnavailable,
    ConfigurationError,
    DatabaseUnavailable,
    DriftlineError,
    InfraError,
    PortTaken,
    StorageUnavailable,
)
from driftline.settings import Settings, load_settings

#: Exit code of an expected failure; usage errors keep click's 2, Ctrl-C 130.
FAILED = 1
INTERRUPTED = 130


class CliError(Exception):
    """An expected failure, already in words: printed as it is, exit `exit_code`."""

    def __init__(self, message: str, *, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def _settings() -> Settings | None:
    try:
        return load_settings()
    except Exception:  # the settings themselves may be what is wrong
        return None


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname or url)


def _unavailable(exc: DriftlineError) -> str | None:
    settings = _settings()
    start = "Start the local services with `driftline infra up` (`infra status` shows them)."
    if isinstance(exc, DatabaseUnavailable):
        where = _host_port(settings.database_url) if settings else "the configured address"
        return f"PostgreSQL does not answer at {where} (DRIFTLINE_DATABASE_URL). {start}"
    if isinstance(exc, BrokerUnavailable):
        where = settings.kafka_bootstrap_servers if settings else "the configured address"
        return f"Kafka does not answer at {where} (DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS). {start}"
    if isinstance(exc, StorageUnavailable):
        where = (settings.s3_endpoint_url if settings else None) or "the configured endpoint"
        return f"The object store does not answer at {where} (DRIFTLINE_S3_ENDPOINT_URL). {start}"
    return None


def _infra(exc: InfraError) -> str:
    """The first line of an infra failure; a log's tail is pointed at, not printed."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "; last lines of " in first:
        what, log = first.split("; last lines of ", 1)
        return f"{what}. Its log: {log.rstrip(':')}"
    return first


def explain(exc: BaseException) -> str | None:
    """`exc` in one or two sentences, or None when it is not an expected failure."""
    if isinstance(exc, CliError):
        return exc.message
    if isinstance(exc, PortTaken | ConfigurationError):
        return str(exc)
    if isinstance(exc, InfraError):
        return _infra(exc)
    if isinstance(exc, DriftlineError):
        return _unavailable(exc) or str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"cannot use {exc.filename}: {exc.strerror or exc}"
    return None


def report(exc: BaseException, *, debug: bool, stream: TextIO | None = None) -> int:
    """Print `exc` for a person (and its traceback with `debug`); returns the exit code."""
    out = stream or sys.stderr
    if isinstance(exc, KeyboardInterrupt):
        out.write("interrupted\n")
        return INTERRUPTED
    if debug:
        traceback.print_exception(exc, file=out)
    message = explain(exc)
    if message is None:
        out.write(
            f"error: unexpected {type(exc).__name__}: {exc}\n"
            "This is a bug in Driftline; run the command again with --debug and report "
            "the traceback.\n"
        )
        return FAILED
    out.write(f"error: {message}\n")
    return exc.exit_code if isinstance(exc, CliError) else FAILED
