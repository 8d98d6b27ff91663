"""Memory of Driftline's processes: lean stages, and what a second OpenDrift process adds.

    .venv/bin/python -m bench.memory

Each figure is read from /proc (`VmRSS`, `VmHWM` the peak, and `smaps_rollup`'s `Pss`,
which splits pages shared between processes, such as the memory-mapped landmask, among
them) of real processes:

* `driftline worker validate` and `driftline worker postprocess`, started on their own
  database, topics and bucket (wired: landmask mapped, consumer joined): RSS at rest.
* the post-processing work of one 2,000-particle, 24 h mission (density grid, regions,
  GeoJSON/KML, the PNG map with its coastline from the landmask), in a fresh process
  as the postprocess stage does it: peak RSS.
* OpenDrift processes as the simulation pool starts them (spawned, warmed up with one
  small run): the first one's RSS, then what a second one adds (the sum of PSS with two
  minus with one), with OpenDrift's own landmask (roaring-landmask, loaded per process)
  and with `landmask.share_with_opendrift()` (the shared mapping).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import multiprocessing
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.processes import Child, rss_bytes
from bench.stage_throughput import load_average, scratch, until
from driftline.infra.manager import LocalServices
from driftline.settings import PROJECT_ROOT, load_settings
from tests.pipeline import settings_env

MB = 2**20


def proc_memory(pid: int) -> dict[str, int]:
    """RSS, peak RSS and PSS of `pid`, in bytes."""
    found: dict[str, int] = {}
    for name, key in (("status", "VmRSS"), ("status", "VmHWM"), ("smaps_rollup", "Pss")):
        try:
            for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
                if line.startswith(f"{key}:"):
                    found[key] = int(line.split()[1]) * 1024
                    break
        except OSError:
            found[key] = 0
    return found


# -- stage processes -----------------------------------------------------------------------


async def stage_processes() -> list[tuple[str, str]]:
    base = load_settings()
    local = LocalServices(base)
    local.up()
    rows = []
    async with scratch(base, local) as s:
        env = {**settings_env(s.settings), "PYTHONPATH": str(PROJECT_ROOT)}
        for stage in ("validate", "postprocess"):
            argv = [sys.executable, "-m", "driftline.cli.main", "worker", stage]
            child = Child(stage, argv, env, s.settings.work_dir / "logs" / f"{stage}.log")
            child.start()
            try:
                await until(functools.partial(_started, child), 180, 0.5)
                await asyncio.sleep(2)
                memory = proc_memory(child.pid)
            finally:
                await child.stop()
            rows.append(
                (
                    f"`driftline worker {stage}` at rest (wired, landmask mapped)",
                    f"RSS {memory['VmRSS'] / MB:,.0f} MB (peak {memory['VmHWM'] / MB:,.0f}), "
                    f"PSS {memory['Pss'] / MB:,.0f} MB",
                )
            )
    return rows


async def _started(child: Child) -> bool:
    if not child.alive():
        raise SystemExit(f"{child.name} exited:\n{child.log_text()[-2000:]}")
    return "runner.started" in child.log_text()


# -- post-processing work ------------------------------------------------------------------


def _postprocess_once(particles_nc: str, out_dir: str) -> int:
    """In a fresh process: the products of one simulation; returns the peak RSS."""
    from driftline.landmask import gshhg_landmask
    from driftline.postprocess.products import build_products

    build_products(Path(particles_nc), Path(out_dir), land=gshhg_landmask())
    return proc_memory(os.getpid())["VmHWM"]


def _simulate_once(work: str, share: bool) -> str:
    """In a fresh process: one 2,000-particle 24 h run on the sample forcing."""
    from driftline.forcing.sample import write_sample_forcing
    from driftline.simulation.leeway import SimulationRequest, run_leeway, seed_from_mission_id

    if share:
        from driftline.landmask import share_with_opendrift

        share_with_opendrift()
    folder = Path(work)
    sample = write_sample_forcing(
        folder / "forcing", lat=60.0, lon=4.0, start=datetime(2024, 1, 1), hours=30
    )
    output = folder / "particles.nc"
    run_leeway(
        SimulationRequest(
            mission_id="memory",
            object_type=7,
            lat=60.0,
            lon=4.0,
            start=datetime(2024, 1, 1, 6),
            duration_hours=24,
            particles=2000,
            seed=seed_from_mission_id("memory"),
            radius_m=1000,
            forcing_paths=[sample.current_path, sample.wind_path],
        ),
        output,
    )
    return str(output)


# -- OpenDrift processes -------------------------------------------------------------------


def _warm(share: bool, ready: Any, done: Any, work: str) -> None:
    """A pool process: warmed up (OpenDrift imported, landmask loaded, one run), then idle."""
    _simulate_once(work, share)
    ready.set()
    done.wait()


def opendrift_processes(share: bool, work: Path) -> tuple[int, int]:
    """(RSS of one warm OpenDrift process, PSS added by a second one), in bytes."""
    context = multiprocessing.get_context("spawn")
    done = context.Event()
    first_ready, second_ready = context.Event(), context.Event()
    first = context.Process(target=_warm, args=(share, first_ready, done, str(work / "a")))
    first.start()
    try:
        first_ready.wait(600)
        one = proc_memory(first.pid or 0)
        second = context.Process(target=_warm, args=(share, second_ready, done, str(work / "b")))
        second.start()
        second_ready.wait(600)
        time.sleep(1)
        both = [proc_memory(p.pid or 0) for p in (first, second)]
        done.set()
        second.join(60)
    finally:
        done.set()
        first.join(60)
    return one["VmRSS"], sum(m["Pss"] for m in both) - one["Pss"]


def main() -> None:
    rows = asyncio.run(stage_processes())
    work = PROJECT_ROOT / ".driftline" / "bench-memory" / str(os.getpid())
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        particles = pool.apply(_simulate_once, (str(work / "sim"), True))
    with context.Pool(1) as pool:
        peak = pool.apply(_postprocess_once, (particles, str(work / "products")))
    rows.append(
        (
            "post-processing one 2,000-particle 24 h mission in a fresh process",
            f"peak RSS {peak / MB:,.0f} MB",
        )
    )
    for share in (False, True):
        first, added = opendrift_processes(share, work / f"pool-{share}")
        how = "shared mapped landmask" if share else "OpenDrift's own landmask (roaring)"
        rows.append(
            (
                f"OpenDrift pool processes, {how}",
                f"first {first / MB:,.0f} MB RSS; a second adds {added / MB:,.0f} MB PSS "
                f"({added / first:.2f}x the first)",
            )
        )
    print(f"\n### process memory\n\n{load_average()}\n\n| process | memory |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\n(this harness itself: {rss_bytes(os.getpid()) / MB:,.0f} MB RSS)")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    main()
