"""From a `forcing.ready` event to the simulation request (naive UTC at this boundary)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from driftline.contracts.events import ForcingReadyV1
from driftline.simulation.leeway import SimulationRequest


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
    )
