"""Process lifecycle: stop on SIGTERM/SIGINT, sleeps that end early when stopping, and
child processes that end with their parent."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import threading
import time


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, so processes drain instead of dying mid-work."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


#: prctl(2) option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, *, poll_s: float = 1.0) -> None:
    """End this child process when `parent_pid` ends, even when the parent is SIGKILLed.

    Called first thing in a child (a simulation pool process holds gigabytes). Two means:

    * `PR_SET_PDEATHSIG` (Linux): the kernel sends SIGKILL as soon as the parent dies. It
      fires when the parent *thread* that forked us exits, not the parent process, so the
      parent must spawn from a thread that lives as long as it does (the pool spawns from
      the event loop's thread); and it is not retroactive, hence the check of getppid()
      right after it, for a parent that died while we started.
    * a watchdog thread polling getppid(): the fallback where prctl is unavailable.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent_pid, poll_s), name="parent-watchdog", daemon=True
    ).start()


def _watch_parent(parent_pid: int, poll_s: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(poll_s)
    os._exit(1)  # no cleanup: the parent that would collect our results is gone
