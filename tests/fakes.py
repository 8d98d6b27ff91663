"""Purpose-built stand-ins for the adapters stages receive, for tests without services.

Each one honours the protocol the real adapter implements (`LandMask`, `Simulator`,
`ForcingSubsets`, `Callbacks`) and records what it was asked, so a test asserts on
behaviour rather than on internals.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from driftline.contracts.events import MissionCompletedV1, SimulationCompletedV1
from driftline.forcing.catalog import Catalog, ChosenSource
from driftline.forcing.model import SourceConfig
from driftline.forcing.plan import ForcingPlan
from driftline.forcing.store import subset_key
from driftline.simulation.leeway import SimulationOutcome, SimulationRequest


class FakeLand:
    """Land east of `coast_lon`: a coastline without loading GSHHG (seconds)."""

    def __init__(self, coast_lon: float = 4.12) -> None:
        self.coast_lon = coast_lon

    def contains(self, lon: float, lat: float) -> bool:
        return lon > self.coast_lon

    def contains_many(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return np.asarray(lon) > self.coast_lon


@dataclass
class InMemorySubsets:
    """Remembers which subsets were asked for; cuts nothing."""

    ensured: list[str] = field(default_factory=list)

    async def ensure(self, chosen: ChosenSource, plan: ForcingPlan) -> str:
        key = subset_key(chosen, plan)
        self.ensured.append(key)
        return key


@dataclass
class RecordingCallbacks:
    """Records callbacks instead of sending them."""

    sent: list[tuple[str, MissionCompletedV1, str]] = field(default_factory=list)

    async def send(self, url: str, completed: MissionCompletedV1, webhook_id: str) -> None:
        self.sent.append((url, completed, webhook_id))


@dataclass
class FakeSimulator:
    """Writes a small particle file where the request says, as the pool would."""

    stranded: int = 0
    requests: list[SimulationRequest] = field(default_factory=list)

    async def run(self, request: SimulationRequest, output_path: Path) -> SimulationOutcome:
        self.requests.append(request)
        write_particles(output_path, n=request.particles, stranded=self.stranded)
        return SimulationOutcome(
            particles_total=request.particles,
            active=request.particles - self.stranded,
            stranded=self.stranded,
            missing_forcing=0,
            output_path=output_path,
        )


def particle_cloud(n: int = 4000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A skewed two-lobe cloud, the shape real drift produces after a wind shift."""
    rng = np.random.default_rng(seed)
    main = rng.multivariate_normal([4.0, 60.0], [[0.004, 0.0015], [0.0015, 0.001]], int(n * 0.7))
    lobe = rng.multivariate_normal([4.15, 60.05], [[0.0008, 0], [0, 0.0003]], n - len(main))
    points = np.vstack([main, lobe])
    return points[:, 0], points[:, 1]


def write_particles(path: Path, n: int = 1000, seed: int = 3, stranded: int = 10) -> None:
    """An OpenDrift-like particle file: 5 half-hourly steps spreading from (4 °E, 60 °N).

    The last `stranded` particles strand at step 3: status 1, positions masked afterwards.
    """
    lon, lat = particle_cloud(n, seed)
    steps = 5
    lons = np.stack([4.0 + (lon - 4.0) * k / (steps - 1) for k in range(steps)], axis=1)
    lats = np.stack([60.0 + (lat - 60.0) * k / (steps - 1) for k in range(steps)], axis=1)
    status = np.zeros_like(lons)
    if stranded:
        status[-stranded:, 3:] = 1
        lons[-stranded:, 4:] = np.nan
        lats[-stranded:, 4:] = np.nan
    times = np.array(
        [np.datetime64("2024-01-01T00:00") + np.timedelta64(30 * k, "m") for k in range(steps)]
    )
    ds = xr.Dataset(
        {
            "lon": (("trajectory", "time"), lons.astype("float32")),
            "lat": (("trajectory", "time"), lats.astype("float32")),
            "status": (
                ("trajectory", "time"),
                status,
                {"flag_values": [0, 1], "flag_meanings": "active stranded"},
            ),
        },
        coords={"trajectory": np.arange(n), "time": times},
    )
    ds.to_netcdf(path)


@dataclass
class FakeShards:
    """A shard ledger in memory: what the simulate stage would have recorded."""

    recorded: list[SimulationCompletedV1] = field(default_factory=list)

    async def simulated(self, mission_id: uuid.UUID) -> list[SimulationCompletedV1]:
        found = [c for c in self.recorded if c.mission_id == mission_id and c.shard]
        return sorted(found, key=lambda c: c.shard.index if c.shard else 0)


def still_water_catalog() -> Catalog:
    """Constant current and wind everywhere: covers any mission, reads no file."""
    return Catalog(
        [
            SourceConfig(
                name="still-water",
                kind="constant",
                variables=["current", "wind"],
                values={"current": (0.1, 0.0), "wind": (2.0, 1.0)},
                synthetic_allowed=True,
            )
        ]
    )
