"""Driftline processes started for a chaos run or a fault test, and what survives them.

Each process is a real `driftline …` command in its own session, logging to a file, with
an environment marker (`MARKER=<run id>`) that its children (the OpenDrift pool, the
multiprocessing resource tracker) inherit: after the run, any process still carrying
the marker is an orphan, whoever its parent is now.

Also what the benchmarks read about a process (RSS, CPU seconds, of a whole tree) and
`Child`, a benchmark deployment's process, which ends with the harness that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from driftline.settings import PROJECT_ROOT

MARKER = "DRIFTLINE_CHAOS_RUN"


@dataclass(frozen=True)
class ProcessInfo:
    """One line of a process listing."""

    pid: int
    ppid: int
    cmdline: str


def process_info(pid: int) -> ProcessInfo | None:
    """`pid`'s parent and command line, or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return ProcessInfo(pid, int(fields[1]), raw.replace(b"\0", b" ").decode(errors="replace"))


def all_processes() -> list[ProcessInfo]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := process_info(int(entry.name))) is not None:
            found.append(info)
    return found


def children(pid: int) -> list[ProcessInfo]:
    return [p for p in all_processes() if p.ppid == pid]


def marked(run_id: str) -> list[ProcessInfo]:
    """Live processes whose environment carries `MARKER=run_id` (except this one)."""
    needle = f"{MARKER}={run_id}".encode()
    found = []
    for info in all_processes():
        if info.pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{info.pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in environ:
            found.append(info)
    return found


PR_SET_PDEATHSIG = 1


def _end_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class Child:
    """A process a harness starts: its command line, its log file, start and stop.

    By default it ends with the harness (PR_SET_PDEATHSIG), so an interrupted benchmark
    leaves nothing behind; `own_session` processes outlive it instead (see
    `DriftlineProcess`). SIGKILL (`kill`) reaches the process alone, never its children.
    """

    name: str
    argv: list[str]
    env: dict[str, str]
    log_file: Path
    own_session: bool = False
    popen: subprocess.Popen[bytes] | None = None
    log_offset: int = 0  # where this run of the process starts in its log
    starts: int = field(default=0)

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=PROJECT_ROOT,
                start_new_session=self.own_session,
                # prctl only: safe between fork and exec
                preexec_fn=None if self.own_session else _end_with_parent,
            )
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL this process only: whatever it started must end by itself."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    async def stop(self, grace_s: float = 45.0) -> int | None:
        """SIGTERM (drain), then SIGKILL after `grace_s`; returns the exit status."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.popen.wait, grace_s)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.popen.returncode

    def log_text(self) -> str:
        """This run's output (the log file is shared by restarts)."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(self.log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    async def wait_for_line(self, marker: str, timeout_s: float, *, after: int = 0) -> bool:
        """Wait until this run's output holds more than `after` lines containing `marker`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.log_text().count(marker) > after:
                return True
            if not self.alive():
                return False
            await asyncio.sleep(0.05)
        return False


class DriftlineProcess(Child):
    """`driftline ARGS` in its own session, outliving the harness: a chaos run kills and
    restarts it on purpose, and looks for its orphans by the run's marker afterwards."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_file: Path) -> None:
        argv = [sys.executable, "-m", "driftline.cli.main", *args]
        super().__init__(name, argv, env, log_file, own_session=True)


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of `pid` and its live descendants (PostgreSQL's backends, uvicorn's
    workers), from one pass over /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, total = [pid], 0.0
    while tree:
        current = tree.pop()
        total += cpu_seconds(current)
        tree.extend(children.get(current, []))
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
