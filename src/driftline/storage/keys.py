"""Where a mission's trajectories live in the artifact store (all under its prefix)."""

from __future__ import annotations

from driftline.contracts.events import Shard

NETCDF = "application/x-netcdf"


def particles_key(tenant: str, mission_id: str) -> str:
    """The mission's particle file (a huge mission's shards merged)."""
    return f"{tenant}/{mission_id}/raw/particles.nc"


def shard_particles_key(tenant: str, mission_id: str, shard: Shard) -> str:
    """One shard's particle file, until postprocess merges the shards."""
    return f"{tenant}/{mission_id}/raw/shards/{shard.index:04d}-of-{shard.count:04d}.nc"
