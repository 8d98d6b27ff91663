"""A SIGKILLed worker leaves nothing behind: its OpenDrift pool and the multiprocessing
resource tracker end with it, and the next worker removes its work folder."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path

from bench.processes import MARKER, DriftlineProcess, children, marked, process_info
from driftline.runtime import work_folders
from driftline.settings import Settings
from tests.helpers import unique_id
from tests.pipeline import settings_env


def _worker(settings: Settings, stage: str, log: Path, run_id: str) -> DriftlineProcess:
    env = {**settings_env(settings), MARKER: run_id}
    return DriftlineProcess(stage, ["worker", stage], env, log)


async def _started(worker: DriftlineProcess) -> None:
    worker.start()
    if not await worker.wait_for_line("runner.started", 180):
        raise AssertionError(f"{worker.name} did not start:\n{worker.log_text()[-3000:]}")


async def _survivors(pids: list[int], timeout_s: float) -> list[int]:
    """The pids still running after up to `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [p for p in pids if process_info(p) is not None]
        if not alive or time.monotonic() > deadline:
            return alive
        await asyncio.sleep(0.2)


async def test_sigkilled_simulate_worker_leaves_no_process(
    settings: Settings, tmp_path: Path
) -> None:
    run_id = unique_id()
    worker = _worker(settings, "simulate", tmp_path / "simulate.log", run_id)
    try:
        await _started(worker)  # the pool is warm before the runner starts
        spawned = [p for p in children(worker.pid) if "multiprocessing" in p.cmdline]
        kinds = {"spawn_main" in p.cmdline for p in spawned}
        assert kinds == {True, False}, f"a pool process and the resource tracker: {spawned}"
        worker.kill()  # the worker alone: its children must end by themselves
        survivors = await _survivors([p.pid for p in spawned], timeout_s=5)
        assert not survivors, [process_info(p) for p in survivors]
        assert not marked(run_id), "nothing started by the worker outlives it"
    finally:
        worker.kill()
        for leftover in marked(run_id):
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover.pid, signal.SIGKILL)


async def test_restarted_worker_removes_dead_workers_folders_only(
    settings: Settings, tmp_path: Path
) -> None:
    run_id = unique_id()
    work = settings.work_dir
    work.mkdir(parents=True)
    other_host = work / "elsewhere-1-1"
    other_host.mkdir()
    unknown = work / "tmp-by-hand"
    unknown.mkdir()
    live = _worker(settings, "notify", tmp_path / "live.log", run_id)
    victim = _worker(settings, "notify", tmp_path / "victim.log", run_id)
    successor = _worker(settings, "notify", tmp_path / "successor.log", run_id)
    try:
        await asyncio.gather(_started(live), _started(victim))
        live_folder = work / work_folders.folder_name(live.pid)
        victim_folder = work / work_folders.folder_name(victim.pid)
        (victim_folder / "tmpabc").mkdir()  # a stage's temporary folder, mid-run
        victim.kill()
        assert victim_folder.exists(), "a SIGKILLed worker cannot clean up"
        await _started(successor)
        assert not victim_folder.exists(), "the dead worker's folder is removed"
        assert live_folder.is_dir(), "a live worker's folder is never touched"
        assert other_host.is_dir() and unknown.is_dir(), "nor what this host did not make"
        await asyncio.gather(live.stop(), successor.stop())
        assert not live_folder.exists(), "a worker that stops removes its own folder"
    finally:
        for worker in (live, victim, successor):
            worker.kill()
