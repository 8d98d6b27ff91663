"""Each worker process's own folder under `work_dir`, and the removal of dead ones'.

Stages write their temporary files (forcing, trajectories, products) under
`settings.work_dir`; a process killed mid-stage leaves them behind. So each worker
process works in `work_dir/<host>-<pid>-<start>` (its start time in clock ticks since
boot, so a reused pid is never taken for the owner), and a starting worker removes the
folders of this host whose owner is no longer running: never a live process's, never
another host's (the folder may be shared), never a name it did not make.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import structlog

log = structlog.get_logger("driftline.work_folders")


def process_start(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot), or None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])  # field 22 of proc(5), counted from 1 with pid and comm


def _host() -> str:
    return socket.gethostname().replace("/", "_") or "localhost"


def folder_name(pid: int | None = None) -> str:
    """This process's (or `pid`'s) folder name."""
    pid = os.getpid() if pid is None else pid
    return f"{_host()}-{pid}-{process_start(pid)}"


def owner_alive(name: str) -> bool | None:
    """Whether the process that made folder `name` still runs; None if not ours to judge
    (another host's, or a name this module does not make)."""
    parts = name.rsplit("-", 2)
    if len(parts) != 3 or parts[0] != _host() or not (parts[1] + parts[2]).isdigit():
        return None
    return process_start(int(parts[1])) == int(parts[2])


def claim(work_dir: Path) -> Path:
    """Remove dead processes' folders, then create and return this process's folder."""
    removed = sweep(work_dir)
    if removed:
        log.info("work_folders.swept", removed=len(removed), work_dir=str(work_dir))
    own = work_dir / folder_name()
    own.mkdir(parents=True, exist_ok=True)
    return own


def sweep(work_dir: Path) -> list[Path]:
    """Remove the folders in `work_dir` left by processes of this host that are gone."""
    removed: list[Path] = []
    if not work_dir.is_dir():
        return removed
    for entry in work_dir.iterdir():
        if entry.is_dir() and owner_alive(entry.name) is False:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
