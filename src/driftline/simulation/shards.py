"""Huge missions in shards: how a mission is split, what each shard seeds, how they merge.

A mission with more particles than the deployment's shard size becomes `count` shards,
each a slice of every scenario's particles with a seed of its own. The split depends
only on the mission and the shard size, never on the number of workers, so the merged
particle file is the same however many simulate workers shared the shards: exactly the
file one process gives running the same shard requests one after another.

Shards travel as separate `forcing.ready` records whose keys are chosen to land on
consecutive partitions; the round-robin assignor gives consecutive partitions to
different consumers, so the shards of one mission spread over the simulate workers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
from aiokafka.partitioner import murmur2

from driftline.contracts.events import Shard
from driftline.netcdf_io import NETCDF_LOCK
from driftline.simulation.leeway import SimulationRequest

#: The particle file's dimensions (OpenDrift writes every variable per trajectory and time).
_TRAJECTORY = "trajectory"
_TIME = "time"


def shard_count(particles: int, shard_size: int) -> int:
    """How many shards `particles` make; 1 (no split) when sharding is off or not needed."""
    if shard_size <= 0 or particles <= shard_size:
        return 1
    return -(-particles // shard_size)


def split_evenly(total: int, count: int) -> list[int]:
    """`total` in `count` parts differing by at most one, the larger parts first."""
    base, extra = divmod(total, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


def shard_seed(seed: int, index: int) -> int:
    """Shard `index`'s own 32-bit seed: independent streams from one mission seed."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as the Java client) picks."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def shard_keys(mission_id: uuid.UUID, count: int, partitions: int) -> list[str]:
    """A key per shard, `<mission id>/<index>/<salt>`, landing on consecutive partitions
    (starting where the mission id itself lands)."""
    first = partition_of(str(mission_id), partitions)
    keys = []
    for index in range(count):
        wanted = (first + index) % partitions
        salt = 0
        while partition_of(f"{mission_id}/{index}/{salt}", partitions) != wanted:
            salt += 1
        keys.append(f"{mission_id}/{index}/{salt}")
    return keys


def plan_shards(
    mission_id: uuid.UUID,
    *,
    scenario_particles: Sequence[int],
    seed: int,
    shard_size: int,
    partitions: int,
) -> list[Shard]:
    """The shards of a mission (empty: simulate it whole). Each shard takes its slice of
    every scenario, so every shard seeds every scenario in proportion."""
    count = shard_count(sum(scenario_particles), shard_size)
    if count == 1:
        return []
    slices = [split_evenly(n, count) for n in scenario_particles]
    keys = shard_keys(mission_id, count, partitions)
    return [
        Shard(
            index=i,
            count=count,
            particles=sum(parts[i] for parts in slices),
            seed=shard_seed(seed, i),
            key=keys[i],
        )
        for i in range(count)
    ]


def shard_request(request: SimulationRequest, shard: Shard) -> SimulationRequest:
    """What shard `shard` simulates: its slice of each scenario, with its own seed.

    Scenarios keep their order (and so their `origin_marker`) even when a slice is empty.
    """
    scenarios = tuple(
        replace(scenario, particles=split_evenly(scenario.particles, shard.count)[shard.index])
        for scenario in request.seed_scenarios()
    )
    return replace(request, particles=shard.particles, seed=shard.seed, scenarios=scenarios)


def merge_particle_files(paths: Sequence[Path], output: Path) -> int:
    """One particle file from the shards' files, in shard order; returns the particles.

    Trajectories are renumbered 1..N in shard order. A shard whose particles all
    stopped early has a shorter time axis: the merged one is the union, the missing
    steps filled as OpenDrift fills steps after a particle's deactivation. Status codes
    are mapped by name, so shards that met different status categories still agree.
    """
    with NETCDF_LOCK:
        shards = [netCDF4.Dataset(path) for path in paths]
        try:
            return _merge(shards, output)
        finally:
            for dataset in shards:
                dataset.close()


def _merge(shards: list[netCDF4.Dataset], output: Path) -> int:
    first = shards[0]
    own_times = [_times_as(first, shard) for shard in shards]
    times = np.unique(np.concatenate(own_times))
    sizes = [len(s.dimensions[_TRAJECTORY]) for s in shards]
    total = sum(sizes)
    names = _status_names(shards)
    variables = [
        name for name, var in first.variables.items() if var.dimensions == (_TRAJECTORY, _TIME)
    ]
    with netCDF4.Dataset(output, "w") as out:
        out.setncatts({k: first.getncattr(k) for k in first.ncattrs()})
        out.setncattr("driftline_shards", len(shards))
        out.createDimension(_TRAJECTORY, total)
        out.createDimension(_TIME, len(times))
        _copy_coordinate(first, out, _TIME, times)
        _copy_coordinate(first, out, _TRAJECTORY, np.arange(1, total + 1, dtype="int32"))
        for name in variables:
            source = first.variables[name]
            fill = _fill_value(source)
            merged = np.full((total, len(times)), fill, dtype=source.dtype)
            row = 0
            for shard, size, shard_times in zip(shards, sizes, own_times, strict=True):
                columns = np.searchsorted(times, shard_times)
                values = shard.variables[name][:].filled(fill)
                if name == "status":
                    values = _remap_status(values, shard, names, fill)
                merged[row : row + size, columns] = values
                row += size
            target = out.createVariable(name, source.dtype, (_TRAJECTORY, _TIME), fill_value=fill)
            attrs = {k: source.getncattr(k) for k in source.ncattrs() if k != "_FillValue"}
            if name == "status":
                codes = np.arange(len(names), dtype=source.dtype)
                attrs.update(
                    flag_values=codes,
                    flag_meanings=" ".join(names),
                    valid_range=np.array([0, len(names) - 1], dtype=source.dtype),
                )
            elif np.issubdtype(merged.dtype, np.floating) and np.isfinite(merged).any():
                attrs.update(minval=np.nanmin(merged), maxval=np.nanmax(merged))
            target.setncatts(attrs)
            target[:] = merged
    return total


def _times_as(reference: netCDF4.Dataset, shard: netCDF4.Dataset) -> np.ndarray:
    """The shard's output times in the reference's time units (OpenDrift always writes
    seconds since 1970; other writers may not)."""
    ref, own = reference.variables[_TIME], shard.variables[_TIME]
    values = own[:].filled()
    if own.getncattr("units") == ref.getncattr("units"):
        return np.asarray(values)
    calendar = ref.getncattr("calendar") if "calendar" in ref.ncattrs() else "standard"
    dates = netCDF4.num2date(values, own.getncattr("units"), calendar)
    return np.asarray(netCDF4.date2num(dates, ref.getncattr("units"), calendar))


def _fill_value(variable: netCDF4.Variable[Any]) -> Any:
    """The variable's fill value, or netCDF's default for its type."""
    if "_FillValue" in variable.ncattrs():
        return variable.getncattr("_FillValue")
    return netCDF4.default_fillvals[variable.dtype.str[1:]]


def _copy_coordinate(
    source: netCDF4.Dataset, out: netCDF4.Dataset, name: str, values: np.ndarray
) -> None:
    original = source.variables[name]
    target = out.createVariable(name, original.dtype, (name,))
    target.setncatts({k: original.getncattr(k) for k in original.ncattrs()})
    target[:] = values


def _status_names(shards: list[netCDF4.Dataset]) -> list[str]:
    """Every status category the shards used, in first-seen order (`active` first)."""
    names: list[str] = []
    for shard in shards:
        for name in _flag_meanings(shard):
            if name not in names:
                names.append(name)
    return names


def _flag_meanings(shard: netCDF4.Dataset) -> list[str]:
    return str(shard.variables["status"].getncattr("flag_meanings")).split()


def _remap_status(
    values: np.ndarray, shard: netCDF4.Dataset, names: list[str], fill: object
) -> np.ndarray:
    """This shard's status codes as the merged file's codes (same names)."""
    own = _flag_meanings(shard)
    if own == names[: len(own)]:
        return values
    mapped = values.copy()
    for code, name in enumerate(own):
        mapped[values == code] = names.index(name)
    mapped[values == fill] = fill
    return mapped
