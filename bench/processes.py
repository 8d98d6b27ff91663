"""Driftline processes started for a chaos run or a fault test, and what survives them.

Each process is a real `driftline …` command in its own session, logging to a file, with
an environment marker (`MARKER=<run id>`) that its children (the OpenDrift pool, the
multiprocessing resource tracker) inherit: after the run, any process still carrying
the marker is an orphan, whoever its parent is now.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class DriftlineProcess:
    """`driftline ARGS` as its own process; SIGKILL reaches it alone, never its children."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_file: Path
    popen: subprocess.Popen[bytes] | None = None
    log_offset: int = 0  # where this run of the process starts in its log
    starts: int = field(default=0)

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with self.log_file.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "driftline.cli.main", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
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

    def log_since_start(self) -> str:
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
            if self.log_since_start().count(marker) > after:
                return True
            if not self.alive():
                return False
            await asyncio.sleep(0.05)
        return False
