"""From a `forcing.ready` event to the simulation request (naive UTC at this boundary).

Each of the mission's scenarios becomes one `SeedScenario` with its share of the
particles; the single-scenario body becomes exactly the seeding it always had.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from driftline.contracts.events import ForcingReadyV1
from driftline.contracts.missions import MissionCreate, Scenario
from driftline.simulation.leeway import (
    SeedScenario,
    SimulationRequest,
    release_times,
    resolve_object_type,
)


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def simulation_request(event: ForcingReadyV1, forcing_paths: list[Path]) -> SimulationRequest:
    request = event.request
    lkp = request.last_known_position
    end = request.end_position
    options = request.options
    return SimulationRequest(
        mission_id=str(event.mission_id),
        object_type=event.object_type_id,
        lat=lkp.lat,
        lon=lkp.lon,
        start=naive_utc(lkp.time),
        duration_hours=request.duration_hours,
        particles=request.particles,
        seed=event.seed,
        forcing_paths=forcing_paths,
        forcing_sources=tuple(f.source for f in event.forcing),
        radius_m=lkp.radius_m,
        radius_mode=options.radius_mode,
        end_lat=end.lat if end else None,
        end_lon=end.lon if end else None,
        end_time=naive_utc(end.time) if end else None,
        end_radius_m=end.radius_m if end else None,
        release_window_hours=options.release_window_hours,
        backward=options.backward,
        time_step_s=options.time_step_s,
        output_step_s=options.output_step_s,
        capsizing=options.capsizing,
        scenarios=seed_scenarios(request) if request.scenarios is not None else (),
    )


def seed_scenarios(request: MissionCreate) -> tuple[SeedScenario, ...]:
    """The mission's scenarios with their particles (divided by weight), in order."""
    window = request.options.release_window_hours
    return tuple(
        seed_scenario(scenario, count, window)
        for scenario, count in zip(
            request.scenario_list(), request.scenario_particles(), strict=True
        )
    )


def seed_scenario(scenario: Scenario, particles: int, window_hours: float | None) -> SeedScenario:
    object_type = resolve_object_type(scenario.object_type).id
    if scenario.area is not None:
        exterior, *holes = scenario.area.geometry.coordinates
        return SeedScenario(
            kind="polygon",
            object_type=object_type,
            particles=particles,
            lon=tuple(x for x, _ in exterior),
            lat=tuple(y for _, y in exterior),
            times=release_times(naive_utc(scenario.area.time), window_hours),
            holes=tuple(tuple(ring) for ring in holes),
        )
    if scenario.track is not None:
        return SeedScenario(
            kind="track",
            object_type=object_type,
            particles=particles,
            lon=tuple(p.lon for p in scenario.track),
            lat=tuple(p.lat for p in scenario.track),
            times=tuple(naive_utc(p.time) for p in scenario.track),
        )
    lkp, end = scenario.last_known_position, scenario.end_position
    assert lkp is not None  # a scenario has exactly one seeding shape
    if end is not None:
        return SeedScenario(
            kind="cone",
            object_type=object_type,
            particles=particles,
            lon=(lkp.lon, end.lon),
            lat=(lkp.lat, end.lat),
            times=(naive_utc(lkp.time), naive_utc(end.time)),
            radius_m=(lkp.radius_m, end.radius_m or lkp.radius_m),
        )
    return SeedScenario(
        kind="point",
        object_type=object_type,
        particles=particles,
        lon=(lkp.lon,),
        lat=(lkp.lat,),
        times=release_times(naive_utc(lkp.time), window_hours),
        radius_m=(lkp.radius_m,),
    )
