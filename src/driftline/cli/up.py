"""`driftline up`: the API, the outbox relay and the workers in one terminal, and
`driftline ready`: wait until the API answers (for scripts that start `up` in the
background).

`up` runs each as a child process of this command (`driftline api`, `relay`,
`worker all`, as in production), prints their log lines prefixed with the process's
name in its colour, and stops them all on Ctrl-C or SIGTERM (workers drain the records
they hold). A child that dies on its own stops the others: half a pipeline is worse
than none. Children are told by the kernel to stop if `up` itself is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy.engine import make_url

from driftline.cli.failures import CliError
from driftline.errors import PortTaken
from driftline.infra.process import describe_port_holder, port_open
from driftline.settings import Settings, load_settings

console = Console()
COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red")
#: How long children get to drain after SIGTERM before they are killed.
GRACE_S = 45.0
#: prctl(2): the signal a child gets when its parent dies.
PR_SET_PDEATHSIG = 1


@dataclass
class Child:
    """One process `up` runs."""

    name: str
    argv: list[str]
    colour: str
    proc: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = field(default=None, repr=False)


def _stop_with_parent() -> None:
    """In the child, before exec: SIGTERM when `up` dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def readable(line: str) -> str:
    """A JSON log line as `level event key=value ...`; any other line as it is."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict) or "event" not in entry:
        return line
    level = str(entry.pop("level", "")).upper()
    event = entry.pop("event")
    for noise in ("timestamp", "logger", "trace_id", "span_id"):
        entry.pop(noise, None)
    fields = " ".join(f"{k}={v}" for k, v in entry.items())
    return f"{level:<7} {event} {fields}".rstrip()


def _pump(child: Child, stream: IO[bytes], lines: queue.Queue[tuple[Child, str]]) -> None:
    for raw in iter(stream.readline, b""):
        lines.put((child, raw.decode(errors="replace").rstrip("\n")))


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(address if "//" in address else f"//{address}")
    return parts.hostname or "127.0.0.1", parts.port or default_port


def preflight(settings: Settings) -> None:
    """Refuse to start what cannot work: the API's port taken, or the services down."""
    port = settings.api_port
    if port_open(settings.api_host if settings.api_host != "0.0.0.0" else "127.0.0.1", port):
        raise PortTaken(port, "the API", describe_port_holder(port), "DRIFTLINE_API_PORT")
    start = "start the local services with `driftline infra up`"
    database = make_url(settings.database_url)
    host, db_port = database.host or "127.0.0.1", database.port or 5432
    if not port_open(host, db_port):
        raise CliError(
            f"PostgreSQL does not answer at {host}:{db_port} (DRIFTLINE_DATABASE_URL); {start}."
        )
    first = settings.kafka_bootstrap_servers.split(",")[0]
    host, kafka_port = _host_port(first, 9092)
    if not port_open(host, kafka_port):
        raise CliError(
            f"Kafka does not answer at {first} (DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS); {start}."
        )


class Supervisor:
    """Starts the children, relays their lines, stops them together."""

    def __init__(self, children: list[Child], out: Console) -> None:
        self.children = children
        self.out = out
        self.lines: queue.Queue[tuple[Child, str]] = queue.Queue()
        self.stopping: str | None = None
        self.width = max(len(c.name) for c in children)

    def say(self, child: Child | None, line: str) -> None:
        name = child.name if child else "up"
        text = Text(f"{name:<{self.width}} | ", style=f"bold {child.colour}" if child else "bold")
        text.append(line)
        self.out.print(text, soft_wrap=True, highlight=False)

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for child in self.children:
            child.proc = subprocess.Popen(
                [sys.executable, "-m", "driftline.cli.main", *child.argv],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # Ctrl-C reaches `up` only, which stops them in order
                preexec_fn=_stop_with_parent,
            )
            assert child.proc.stdout is not None
            child.reader = threading.Thread(
                target=_pump, args=(child, child.proc.stdout, self.lines), daemon=True
            )
            child.reader.start()
            self.say(
                None,
                f"started {child.name} (pid {child.proc.pid}): driftline {' '.join(child.argv)}",
            )

    def on_signal(self, signum: int, _: FrameType | None) -> None:
        self.stopping = self.stopping or signal.Signals(signum).name

    def drain_lines(self, timeout_s: float) -> None:
        try:
            child, line = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            return
        self.say(child, readable(line))
        while True:
            try:
                child, line = self.lines.get_nowait()
            except queue.Empty:
                return
            self.say(child, readable(line))

    def died(self) -> Child | None:
        return next((c for c in self.children if c.proc and c.proc.poll() is not None), None)

    def stop(self) -> None:
        for child in self.children:
            if child.proc and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline and any(
            c.proc and c.proc.poll() is None for c in self.children
        ):
            self.drain_lines(0.2)
        for child in self.children:
            if child.proc and child.proc.poll() is None:
                self.say(None, f"{child.name} did not stop within {GRACE_S:.0f} s; killed")
                child.proc.kill()
                child.proc.wait()
        for child in self.children:
            if child.reader:
                child.reader.join(timeout=2)
        self.drain_lines(0)


def run_up(settings: Settings, children: list[Child], out: Console) -> int:
    """Run `children` until a signal (exit 0) or one of them ends (exit 1)."""
    supervisor = Supervisor(children, out)
    previous = {s: signal.signal(s, supervisor.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        supervisor.start()
        ready_url = f"{settings.public_base_url.rstrip('/')}/readyz"
        announced = False
        while supervisor.stopping is None:
            supervisor.drain_lines(0.2)
            ended = supervisor.died()
            if ended is not None:
                assert ended.proc is not None
                supervisor.say(
                    None,
                    f"{ended.name} exited with code {ended.proc.returncode}; stopping the rest",
                )
                code = 1
                break
            if not announced and _answers(ready_url):
                announced = True
                supervisor.say(
                    None,
                    f"ready: API at {settings.public_base_url}, relay and workers running. "
                    "Ctrl-C stops them.",
                )
        else:
            supervisor.say(None, f"{supervisor.stopping}: stopping (workers drain what they hold)")
        supervisor.stop()
        supervisor.say(None, "stopped")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return code


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# -- commands ------------------------------------------------------------------------------


def up(
    workers: Annotated[
        str,
        typer.Option(
            help="Stages for the worker process: `all`, or a comma-separated list "
            "(validate,fetch_forcing,simulate,postprocess,notify)."
        ),
    ] = "all",
    api_workers: Annotated[
        int, typer.Option(min=1, help="API processes (`driftline api --workers`).")
    ] = 1,
) -> None:
    """Run the API, the outbox relay and the workers in the foreground, one terminal.

    Log lines are prefixed with their process's name; Ctrl-C (or SIGTERM) stops them
    all. The local services must be running (`driftline infra up`).

    Example: driftline up
    """
    settings = load_settings()
    preflight(settings)
    stages = [s.strip() for s in workers.split(",") if s.strip()] or ["all"]
    processes = [("api", ["api", "--workers", str(api_workers)]), ("relay", ["relay"])]
    if stages == ["all"]:
        processes.append(("workers", ["worker", "all"]))
    else:
        processes += [(stage, ["worker", stage]) for stage in stages]
    children = [
        Child(name, argv, COLOURS[i % len(COLOURS)]) for i, (name, argv) in enumerate(processes)
    ]
    raise typer.Exit(run_up(settings, children, console))


def api_app() -> Any:
    """The API of one uvicorn worker process (`driftline api --workers N` has each worker
    import this): settings from the environment, logs and traces as `driftline api`."""
    from driftline.api.app import create_app
    from driftline.logs import configure_logging
    from driftline.telemetry import configure_tracing

    settings = load_settings()
    configure_logging(settings)
    configure_tracing(settings, "api")
    return create_app(settings)


def ready(
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most.")] = 60.0,
    api_url: Annotated[
        str | None,
        typer.Option("--api-url", help="Default: DRIFTLINE_PUBLIC_BASE_URL.", show_default=False),
    ] = None,
) -> None:
    """Wait until the API answers its readiness check (database and Kafka reachable).

    For scripts that start `driftline up &` and go on at once.

    Example: driftline ready --timeout 60
    """
    base = (api_url or load_settings().public_base_url).rstrip("/")
    deadline = time.monotonic() + timeout
    last: Any = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base}/readyz", timeout=2)
            if response.status_code == 200:
                console.print(f"API ready at {base}")
                return
            last = f"{response.status_code} {response.text.strip()[:120]}"
        except httpx.HTTPError as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(0.5)
    raise CliError(
        f"The API at {base} was not ready within {timeout:.0f} s (last: {last}). "
        "Is `driftline up` running? Its log lines say why not."
    )
