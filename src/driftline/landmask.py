"""The GSHHG full-resolution landmask OpenDrift strands particles on, loaded once per process.

Loading it costs seconds; validation (is the position at sea?) and the PNG map's
coastline both use this one copy, handed to them as a `LandMask` so tests can pass a
simple stand-in instead.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Protocol

import numpy as np


class LandMask(Protocol):
    """Where land is (roaring-landmask's interface: longitude first)."""

    def contains(self, lon: float, lat: float) -> bool: ...

    def contains_many(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray: ...


_LOADING = threading.Lock()


@lru_cache(maxsize=1)
def _load() -> LandMask:
    from roaring_landmask import RoaringLandmask

    mask: LandMask = RoaringLandmask.new()
    return mask


def gshhg_landmask() -> LandMask:
    """The process's one copy; threads asking at once wait for a single load."""
    with _LOADING:
        return _load()
