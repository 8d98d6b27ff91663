"""OpenDrift Leeway: object categories, seeding, a reproducible run, and loud failures.

OpenDrift is imported inside the functions that need it: a cold import costs ~10 s and
belongs in the warm simulation pool, not in every process that validates a mission.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
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
#: `origin_marker` is the index of the particle's scenario (one seeding call each).
EXPORT_VARIABLES = ["lon", "lat", "status", "capsized", "origin_marker"]
#: Output steps held in memory before OpenDrift appends them to the file.
EXPORT_BUFFER_STEPS = 12


@dataclass(frozen=True)
class LeewayCategory:
    id: int
    key: str
    description: str
    #: OBJECTPROP.DAT's nine numbers: downwind, crosswind right, crosswind left, each
    #: (slope % of U10, offset cm/s, standard deviation cm/s). Empty: not read.
    coefficients: tuple[float, ...] = ()


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
                id=int(head[-1]),
                key=head[0],
                description=lines[i + 1].strip().lstrip(">"),
                coefficients=tuple(float(x) for x in lines[i + 2].split()),
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


SeedKind = Literal["point", "cone", "polygon", "track"]


@dataclass(frozen=True)
class SeedScenario:
    """One scenario's release, in OpenDrift's terms; times are naive UTC.

    `point`: one position (`times` holds one time, or the start and end of a continuous
    release); `cone`: two positions and times with their radii; `polygon`: the exterior
    ring in `lon`/`lat` and its holes, at one time (or a release window); `track`: the
    voyage's points with a time each.
    """

    kind: SeedKind
    object_type: int
    particles: int
    lon: tuple[float, ...]
    lat: tuple[float, ...]
    times: tuple[datetime, ...]
    radius_m: tuple[float, ...] = (0.0,)
    holes: tuple[tuple[tuple[float, float], ...], ...] = ()


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
    #: The catalog source of each forcing path, same order (for `forcing_usage`).
    forcing_sources: tuple[str, ...] = ()
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
    #: The weighted scenarios; empty: one scenario from the fields above.
    scenarios: tuple[SeedScenario, ...] = ()

    def seed_scenarios(self) -> tuple[SeedScenario, ...]:
        """What to seed: the scenarios, or the single one the position fields describe."""
        if self.scenarios:
            return self.scenarios
        start = _check(self.start)
        if self.end_lat is not None and self.end_lon is not None:
            return (
                SeedScenario(
                    kind="cone",
                    object_type=self.object_type,
                    particles=self.particles,
                    lon=(self.lon, self.end_lon),
                    lat=(self.lat, self.end_lat),
                    times=(start, _check(self.end_time or start)),
                    radius_m=(self.radius_m, self.end_radius_m or self.radius_m),
                ),
            )
        return (
            SeedScenario(
                kind="point",
                object_type=self.object_type,
                particles=self.particles,
                lon=(self.lon,),
                lat=(self.lat,),
                times=release_times(start, self.release_window_hours),
                radius_m=(self.radius_m,),
            ),
        )


@dataclass(frozen=True)
class SimulationOutcome:
    particles_total: int
    active: int
    stranded: int
    missing_forcing: int
    output_path: Path
    #: Per variable, per forcing source: the particle-steps it served.
    forcing_usage: dict[str, dict[str, int]] = field(default_factory=dict)


def _check(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        raise ValueError("OpenDrift needs naive UTC datetimes")
    return moment


def build_model(request: SimulationRequest, readers: Sequence[object] | None = None) -> object:
    """A seeded Leeway model with the forcing readers; fallback values stay off.

    Readers are added in the request's order, so for each variable OpenDrift asks the
    preferred source first and hands what it cannot serve to the next (composite forcing).
    """
    from opendrift.models.leeway import Leeway

    from driftline.forcing.readers import forcing_readers

    model = Leeway(loglevel=50)
    # The constructor reseeds numpy's global generator; ours makes the run reproducible.
    np.random.seed(request.seed)
    if readers is None:
        readers = forcing_readers(request.forcing_paths, request.forcing_sources)
    model.add_reader(list(readers))
    for variable in ("x_wind", "y_wind", "x_sea_water_velocity", "y_sea_water_velocity"):
        model.set_config(f"environment:fallback:{variable}", None)
    model.set_config("processes:capsizing", request.capsizing)
    model.set_config("seed:jibe_probability", request.jibe_probability)
    for key, value in request.extra_config.items():
        model.set_config(key, value)
    seed_all(model, request)
    return model


def release_times(start: datetime, window_hours: float | None) -> tuple[datetime, ...]:
    """One release time, or the start and end of a continuous release."""
    if not window_hours:
        return (start,)
    return (start, start + timedelta(hours=window_hours))


def seed_all(model: object, request: SimulationRequest) -> None:
    """Seed every scenario, one OpenDrift call each; `origin_marker` is its index (a
    shard's empty slice of a scenario seeds nothing but keeps the others' markers)."""
    for marker, scenario in enumerate(request.seed_scenarios()):
        if scenario.particles == 0:
            continue
        common: dict[str, object] = {
            "number": scenario.particles,
            "object_type": scenario.object_type,
            "radius_type": request.radius_mode,
            "origin_marker": marker,
            "origin_marker_name": f"scenario-{marker}",
        }
        SEEDERS[scenario.kind](model, scenario, common)


def _seed_point(model: object, scenario: SeedScenario, common: dict[str, object]) -> None:
    times = list(scenario.times)
    model.seed_elements(  # type: ignore[attr-defined]
        lon=scenario.lon[0],
        lat=scenario.lat[0],
        radius=scenario.radius_m[0],
        time=times[0] if len(times) == 1 else times,
        **common,
    )


def _seed_cone(model: object, scenario: SeedScenario, common: dict[str, object]) -> None:
    model.seed_cone(  # type: ignore[attr-defined]
        lon=list(scenario.lon),
        lat=list(scenario.lat),
        time=list(scenario.times),
        radius=list(scenario.radius_m),
        **common,
    )


def _seed_polygon(model: object, scenario: SeedScenario, common: dict[str, object]) -> None:
    """OpenDrift's even grid within the exterior ring (`points_within_polygon`, as its
    `seed_within_polygon` does), without the points that fall in a hole."""
    lon, lat = polygon_points(model, scenario)
    times = list(scenario.times)
    model.seed_elements(  # type: ignore[attr-defined]
        lon=lon, lat=lat, time=times[0] if len(times) == 1 else times, **common
    )


def polygon_points(model: object, scenario: SeedScenario) -> tuple[np.ndarray, np.ndarray]:
    from shapely import Polygon, contains_xy

    outer = Polygon(zip(scenario.lon, scenario.lat, strict=True))
    shape = Polygon(outer.exterior.coords, [list(h) for h in scenario.holes])
    wanted = scenario.particles
    # Ask for more grid points in proportion to the holes' share of the exterior's area.
    asked = math.ceil(wanted * outer.area / shape.area)
    for _ in range(8):
        lon, lat = model.points_within_polygon(  # type: ignore[attr-defined]
            np.asarray(scenario.lon), np.asarray(scenario.lat), asked
        )
        inside = contains_xy(shape, lon, lat)
        if inside.sum() >= wanted or not scenario.holes:
            break
        asked = math.ceil(asked * 1.3)
    lon, lat = lon[inside], lat[inside]
    if lon.size == 0:
        raise InvalidMission("polygon_too_small", "no seed point fits inside the polygon")
    # Too few (a thin polygon): repeat the first points, as OpenDrift itself does.
    repeat = np.resize(np.arange(lon.size), wanted)
    return lon[repeat], lat[repeat]


def _seed_track(model: object, scenario: SeedScenario, common: dict[str, object]) -> None:
    lon, lat, times = track_points(scenario)
    model.seed_elements(lon=lon, lat=lat, time=times, **common)  # type: ignore[attr-defined]


def track_points(scenario: SeedScenario) -> tuple[np.ndarray, np.ndarray, list[datetime]]:
    """Where and when the object may have been lost: loss times spread evenly (stratified)
    between departure and arrival, each at the track's position at that time (great
    circles between the points, at constant speed along each leg)."""
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    stamps = np.array([t.timestamp() for t in scenario.times])
    n = scenario.particles
    loss = stamps[0] + (np.arange(n) + 0.5) / n * (stamps[-1] - stamps[0])
    leg = np.clip(np.searchsorted(stamps, loss, side="right") - 1, 0, len(stamps) - 2)
    span = stamps[leg + 1] - stamps[leg]
    fraction = np.where(span > 0, (loss - stamps[leg]) / np.where(span > 0, span, 1), 0.0)
    lon0, lat0 = np.asarray(scenario.lon)[leg], np.asarray(scenario.lat)[leg]
    lon1, lat1 = np.asarray(scenario.lon)[leg + 1], np.asarray(scenario.lat)[leg + 1]
    azimuth, _, distance = geod.inv(lon0, lat0, lon1, lat1)
    lon, lat, _ = geod.fwd(lon0, lat0, azimuth, distance * fraction)
    base = scenario.times[0]
    times = [base + timedelta(seconds=float(s - stamps[0])) for s in loss]
    return np.asarray(lon), np.asarray(lat), times


SEEDERS: dict[str, Callable[[object, SeedScenario, dict[str, object]], None]] = {
    "point": _seed_point,
    "cone": _seed_cone,
    "polygon": _seed_polygon,
    "track": _seed_track,
}


def run_leeway(
    request: SimulationRequest,
    output_path: Path,
    progress: Callable[[float], None] | None = None,
) -> SimulationOutcome:
    """Run Leeway and stream trajectories to `output_path` (NetCDF-CF).

    Raises ForcingGap when any particle met missing forcing: a simulation never drifts
    on fallback zeros.
    """
    from driftline.forcing.readers import forcing_readers, particle_steps_served

    readers = forcing_readers(request.forcing_paths, request.forcing_sources)
    model = build_model(request, readers)
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
    outcome = outcome_of(model, request, output_path)
    return replace(outcome, forcing_usage=particle_steps_served(readers))


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
