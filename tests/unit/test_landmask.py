"""The memory-mapped landmask gives roaring-landmask's answers, without its memory.

roaring-landmask (what OpenDrift strands particles on) is the reference: points spread
over the globe, and points scattered within a few hundred metres of GSHHG's shoreline
vertices (where a coarse mask would be wrong), must get the same answer from both.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from roaring_landmask import LandmaskProvider, RoaringLandmask, Shapes

from driftline.landmask import MappedLandmask, gshhg_landmask


@pytest.fixture(scope="module")
def mapped() -> MappedLandmask:
    land = gshhg_landmask()  # builds the arrays on a machine that has none yet
    assert isinstance(land, MappedLandmask)
    return land


@pytest.fixture(scope="module")
def reference() -> RoaringLandmask:
    return RoaringLandmask.new()


def _near_shore(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    coords = shapely.get_coordinates(shapely.from_wkb(Shapes.wkb(LandmaskProvider.Gshhg)))
    picked = coords[rng.integers(0, len(coords), count)]
    jitter = rng.normal(0.0, 0.003, picked.shape)  # ~300 m
    return picked[:, 0] + jitter[:, 0], np.clip(picked[:, 1] + jitter[:, 1], -89.99, 89.99)


def test_same_answers_as_roaring_landmask(
    mapped: MappedLandmask, reference: RoaringLandmask
) -> None:
    rng = np.random.default_rng(7)
    lon_near, lat_near = _near_shore(200_000, rng)
    lon_any = rng.uniform(-180, 180, 100_000)
    lat_any = rng.uniform(-85, 85, 100_000)
    lon = np.concatenate([lon_near, lon_any])
    lat = np.concatenate([lat_near, lat_any])
    lon = (lon + 180.0) % 360.0 - 180.0

    ours = mapped.contains_many(lon, lat)
    theirs = np.asarray(reference.contains_many(lon, lat), dtype=bool)

    near = ours[:200_000]
    assert 0.2 < near.mean() < 0.8  # both sides of the shore were really sampled
    assert np.array_equal(ours, theirs), f"{int((ours != theirs).sum())} points differ"


def test_single_points(mapped: MappedLandmask) -> None:
    assert mapped.contains(10.75, 59.95)  # Oslo
    assert not mapped.contains(4.0, 60.0)  # the North Sea west of Bergen
    assert mapped.contains(2.35, 48.85)  # Paris
    assert not mapped.contains(-30.0, 0.0)  # the mid-Atlantic
    assert mapped.contains(179.99 + 360, 68.0) == mapped.contains(179.99, 68.0)  # wraps
