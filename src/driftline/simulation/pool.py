"""A warm process pool for OpenDrift: imported and landmask-loaded once per process.

Runs happen in other processes, so the event loop (and aiokafka's heartbeats) never
block; a pool process that dies is a transient error and the pool is rebuilt.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Protocol

import structlog

from driftline.errors import SimulationPoolBroken
from driftline.landmask import share_with_opendrift
from driftline.runtime.lifecycle import die_with_parent
from driftline.simulation.leeway import SimulationOutcome, SimulationRequest, run_leeway, warm_up

log = structlog.get_logger("driftline.simulation_pool")


class Simulator(Protocol):
    """What the simulate stage needs: run one Leeway simulation into `output_path`."""

    async def run(self, request: SimulationRequest, output_path: Path) -> SimulationOutcome: ...


def _ready() -> bool:
    return True


def _init_worker(parent_pid: int, work_dir: Path | None) -> None:
    """Die with the parent; leave SIGTERM/SIGINT to it (it drains, then shuts us down); warm up.

    A SIGKILLed worker would otherwise leave this 2 GB process to PID 1. The resource
    tracker needs no care of its own: it exits when the last process holding its pipe
    (the parent and this one) is gone. A terminal's Ctrl-C or a service manager's SIGTERM
    reaches the whole process group; without ignoring them the run in flight would die
    instead of finishing.
    """
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Before OpenDrift is imported: its landmask is then the machine's shared mapping
    # (tens of MB per process) instead of two private 1.1 GB copies.
    share_with_opendrift()
    warm_up(work_dir)


class SimulationPool:
    """`workers` OpenDrift processes, spawned (direct children, so a signal to the
    process group cannot orphan them behind a dead forkserver) and warmed before use.

    Processes are spawned on submission, from the event loop's thread, which lives as long
    as the pool: their parent-death signal is tied to that thread (`die_with_parent`).
    """

    def __init__(self, workers: int = 1, work_dir: Path | None = None) -> None:
        self._workers = max(1, workers)
        self._work_dir = work_dir
        self._executor: ProcessPoolExecutor | None = None

    def _new_executor(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(
            self._workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(os.getpid(), self._work_dir),
        )

    async def start(self) -> None:
        """Create the processes and wait until every one has run its warm-up."""
        self._executor = self._new_executor()
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._executor, _ready) for _ in range(self._workers))
        )
        log.info("simulation_pool.warm", workers=self._workers)

    async def run(self, request: SimulationRequest, output_path: Path) -> SimulationOutcome:
        if self._executor is None:
            await self.start()
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, run_leeway, request, output_path)
        except BrokenProcessPool as exc:
            log.error("simulation_pool.broken", error=str(exc))
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
            raise SimulationPoolBroken(
                "a simulation process died; the run will be retried"
            ) from exc

    async def close(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)
