"""The GSHHG full-resolution landmask OpenDrift strands particles on, loaded once per process.

Loading it costs ~3 s; validation (is the position at sea?) and the PNG map's coastline
both use this one copy.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def landmask() -> Any:
    from roaring_landmask import RoaringLandmask

    return RoaringLandmask.new()


def is_on_land(lat: float, lon: float) -> bool:
    return bool(landmask().contains(float(lon), float(lat)))
