"""OpenDrift Leeway: object categories, seeding, a reproducible run, and loud failures.

OpenDrift is imported inside the functions that need it: a cold import costs ~10 s and
belongs in the warm simulation pool, not in every process that validates a mission.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from driftline.contracts.object_types import (
    LISTING_HINT,
    find_object_type,
    object_types,
    similar_keys,
)
from driftline.errors import ForcingGap, InvalidMission

#: Exported per particle and time: enough for every product, nothing more (memory, disk).
EXPORT_VARIABLES = ["lon", "lat", "status", "capsized"]
#: Output steps held in memory before OpenDrift appends them to the file.
EXPORT_BUFFER_STEPS = 12


@dataclass(frozen=True)
class LeewayCategory:
    id: int
    key: str
    description: str


def read_opendrift_categories() -> tuple[LeewayCategory, ...]:
    """All Leeway object categories, read from OpenDrift's own OBJECTPROP.DAT.

    Only the shipped table's generator and its test call this; everything else reads
    the table (`driftline.contracts.object_types`), which needs no OpenDrift import.
    """
    text = (resources.files("opendrift.models") / "OBJECTPROP.DAT").read_text()
    body = text.split("\n_", 1)[0]  # the notes after the separator are not categories
    lines = [line for line in body.splitlines() if line.strip()]
    categories = []
    for i in range(0, len(lines) - 2, 3):
        head = lines[i].split()
        categories.append(
            LeewayCategory(
                id=int(head[-1]), key=head[0], description=lines[i + 1].strip().lstrip(">")
            )
        )
    return tuple(categories)


@lru_cache(maxsize=1)
def leeway_categories() -> tuple[LeewayCategory, ...]:
    """All Leeway object categories, from the table shipped with Driftline."""
    return tuple(
        LeewayCategory(id=c.id, key=c.key, description=c.description) for c in object_types()
    )


def resolve_object_type(value: str | int) -> LeewayCategory:
    """A category by key (case-insensitive) or numeric id; InvalidMission with hints if none."""
    found = find_object_type(value)
    if found is not None:
        return LeewayCategory(id=found.id, key=found.key, description=found.description)
    text = str(value).strip()
    if isinstance(value, int) or text.isdigit():
        raise InvalidMission(
            "unknown_object_type",
            f"object type {text} does not exist; ids run from 1 to {len(object_types())} "
            f"({LISTING_HINT})",
        )
    hints = similar_keys(text)
    suggestion = f"; did you mean {', '.join(hints)}?" if hints else ""
    raise InvalidMission(
        "unknown_object_type",
        f"object type {text!r} is not an OpenDrift Leeway category{suggestion} ({LISTING_HINT})",
    )


def seed_from_mission_id(mission_id: str) -> int:
    """A deterministic 32-bit seed: re-running a mission reproduces its particles exactly."""
    return int.from_bytes(hashlib.sha256(mission_id.encode()).digest()[:4], "big")


@dataclass(frozen=True)
class SimulationRequest:
    """Everything a Leeway run needs; times are naive UTC (what OpenDrift accepts)."""

    mission_id: str
    object_type: int
    lat: float
    lon: float
    start: datetime
    duration_hours: float
    particles: int
    seed: int
    forcing_paths: list[Path]
    radius_m: float = 0.0
    radius_mode: Literal["gaussian", "uniform"] = "gaussian"
    end_lat: float | None = None
    end_lon: float | None = None
    end_time: datetime | None = None
    end_radius_m: float | None = None
    release_window_hours: float | None = None
    backward: bool = False
    time_step_s: int = 600
    output_step_s: int = 1800
    capsizing: bool = False
    jibe_probability: float = 0.04
    extra_config: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class SimulationOutcome:
    particles_total: int
    active: int
    stranded: int
    missing_forcing: int
    output_path: Path


def _check(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        raise ValueError("OpenDrift needs naive UTC datetimes")
    return moment


def build_model(request: SimulationRequest) -> object:
    """A seeded Leeway model with the forcing readers; fallback values stay off."""
    from opendrift.models.leeway import Leeway
    from opendrift.readers import reader_netCDF_CF_generic

    model = Leeway(loglevel=50)
    # The constructor reseeds numpy's global generator; ours makes the run reproducible.
    np.random.seed(request.seed)
    model.add_reader([reader_netCDF_CF_generic.Reader(str(p)) for p in request.forcing_paths])
    for variable in ("x_wind", "y_wind", "x_sea_water_velocity", "y_sea_water_velocity"):
        model.set_config(f"environment:fallback:{variable}", None)
    model.set_config("processes:capsizing", request.capsizing)
    model.set_config("seed:jibe_probability", request.jibe_probability)
    for key, value in request.extra_config.items():
        model.set_config(key, value)
    start = _check(request.start)
    common = {
        "number": request.particles,
        "object_type": request.object_type,
        "radius_type": request.radius_mode,
    }
    if request.end_lat is not None and request.end_lon is not None:
        end_time = _check(request.end_time or start)
        model.seed_cone(
            lon=[request.lon, request.end_lon],
            lat=[request.lat, request.end_lat],
            time=[start, end_time],
            radius=[request.radius_m, request.end_radius_m or request.radius_m],
            **common,
        )
    elif request.release_window_hours:
        model.seed_elements(
            lon=request.lon,
            lat=request.lat,
            radius=request.radius_m,
            time=[start, start + timedelta(hours=request.release_window_hours)],
            **common,
        )
    else:
        model.seed_elements(
            lon=request.lon, lat=request.lat, radius=request.radius_m, time=start, **common
        )
    return model


def run_leeway(
    request: SimulationRequest,
    output_path: Path,
    progress: Callable[[float], None] | None = None,
) -> SimulationOutcome:
    """Run Leeway and stream trajectories to `output_path` (NetCDF-CF).

    Raises ForcingGap when any particle met missing forcing: a simulation never drifts
    on fallback zeros.
    """
    model = build_model(request)
    sign = -1 if request.backward else 1
    output_path.parent.mkdir(parents=True, exist_ok=True)
    model.run(  # type: ignore[attr-defined]
        duration=timedelta(hours=request.duration_hours),
        time_step=timedelta(seconds=sign * request.time_step_s),
        time_step_output=timedelta(seconds=sign * request.output_step_s),
        outfile=str(output_path),
        export_variables=EXPORT_VARIABLES,
        export_buffer_length=EXPORT_BUFFER_STEPS,
    )
    if progress is not None:
        progress(1.0)
    return outcome_of(model, request, output_path)


def outcome_of(model: object, request: SimulationRequest, output_path: Path) -> SimulationOutcome:
    status_names: list[str] = model.status_categories  # type: ignore[attr-defined]
    deactivated = model.elements_deactivated  # type: ignore[attr-defined]
    reasons = np.asarray(deactivated.status) if len(deactivated) else np.array([], int)
    counts = {name: int((reasons == i).sum()) for i, name in enumerate(status_names)}
    missing = counts.get("missing_data", 0)
    if missing:
        raise ForcingGap(
            f"{missing} of {request.particles} particles reached a place or time the forcing "
            "does not cover; the simulation was stopped rather than drift them on zeros"
        )
    stranded = counts.get("stranded", 0)
    total = int(model.num_elements_total())  # type: ignore[attr-defined]
    return SimulationOutcome(
        particles_total=total,
        active=total - sum(counts.values()),
        stranded=stranded,
        missing_forcing=missing,
        output_path=output_path,
    )


def warm_up(work_dir: Path | None = None) -> None:
    """Import OpenDrift and load the landmask once, so the first mission is not slow.

    Its files go under `work_dir` (the worker's own folder, swept if the worker dies).
    """
    import tempfile

    from driftline.forcing.sample import write_constant_forcing

    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        start = datetime(2024, 1, 1)
        forcing = write_constant_forcing(
            Path(tmp),
            lat=60.0,
            lon=4.0,
            start=start,
            hours=3,
            current=(0.1, 0.0),
            wind=(5.0, 0.0),
            half_extent_deg=0.5,
        )
        run_leeway(
            SimulationRequest(
                mission_id="warm-up",
                object_type=1,
                lat=60.0,
                lon=4.0,
                start=start,
                duration_hours=1,
                particles=10,
                seed=1,
                forcing_paths=[forcing.current_path, forcing.wind_path],
            ),
            Path(tmp) / "warm.nc",
        )
