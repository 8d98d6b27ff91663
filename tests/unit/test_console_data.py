"""What the console's data routes compute: map views snapped to the tile grid, the
sampled particle frames and the sparse density of a particle file (no I/O but a temp
file, no GSHHG load: the real coastline is exercised by tests/e2e/test_console.py)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import numpy as np
import pytest

from driftline.api.console import MissionLayerCache, parse_bbox
from driftline.console import STATIC_DIR
from driftline.console.coastline import View
from driftline.console.layers import frame_indices, mission_layers, particle_sample
from driftline.postprocess.cloud import read_cloud
from tests.fakes import write_particles


def test_a_view_grows_to_whole_tiles_and_stays_on_the_globe() -> None:
    view = View.snapped((3.1, 59.2, 5.9, 60.8), zoom=3)  # tiles of 45 degrees
    assert (view.west, view.south, view.east, view.north) == (0.0, 45.0, 45.0, 90.0)
    assert View.snapped((3.2, 59.3, 5.8, 60.7), zoom=3) == view  # same tiles, same cache key
    world = View.snapped((-400.0, -95.0, 400.0, 95.0), zoom=0)
    assert (world.west, world.south, world.east, world.north) == (-180.0, -90.0, 180.0, 90.0)
    assert View.snapped((0, 0, 1, 1), zoom=99).zoom == 18
    assert View.snapped((0, 0, 1, 1), zoom=10).tolerance == pytest.approx(360 / 256 / 1024)


@pytest.mark.parametrize(
    "bbox", [(5.0, 59.0, 3.0, 61.0), (3.0, 61.0, 5.0, 59.0), (float("nan"), 0, 1, 1)]
)
def test_an_empty_or_inverted_view_is_refused(bbox: tuple[float, float, float, float]) -> None:
    with pytest.raises(ValueError):
        View.snapped(bbox, zoom=5)


def test_bbox_text_is_four_numbers() -> None:
    assert parse_bbox("3,59.5,6,61") == (3.0, 59.5, 6.0, 61.0)
    for text in ("3,59.5,6", "a,b,c,d", "1,2,3,4,5", ""):
        with pytest.raises(ValueError):
            parse_bbox(text)


def test_frames_are_strided_and_always_end_on_the_last_time() -> None:
    assert frame_indices(5) == [0, 1, 2, 3, 4]
    long = frame_indices(481, limit=97)
    assert len(long) <= 97 and long[0] == 0 and long[-1] == 480
    assert long == sorted(set(long))
    assert particle_sample(50_000, 1000).size == 1000
    assert particle_sample(10, 1000).tolist() == list(range(10))


def test_layers_sample_afloat_particles_and_a_density_that_sums_to_the_share_afloat(
    tmp_path: Path,
) -> None:
    path = tmp_path / "particles.nc"
    write_particles(path, n=1000, stranded=10)
    layers = mission_layers(path)
    cloud = read_cloud(path)
    assert len(layers["times"]) == len(cloud.times) == len(layers["particles"])
    assert layers["times"][0].endswith("Z")
    assert layers["particles_total"] == 1000 and layers["particles_shown"] == 1000
    assert len(layers["particles"][0]) == 1000
    assert len(layers["particles"][-1]) == 990  # the stranded ones are no longer afloat
    density = layers["density"]
    for index, frame in enumerate(density["frames"]):
        rows = np.array([cell[0] for cell in frame])
        cols = np.array([cell[1] for cell in frame])
        assert rows.max() < density["rows"] and cols.max() < density["cols"]
        total = sum(cell[2] for cell in frame)
        assert total == pytest.approx(len(layers["particles"][index]) / 1000, abs=1e-3)
    assert density["west"] < 4.0 < density["east"] and density["south"] < 60.0 < density["north"]


def test_the_layer_cache_keeps_the_most_recent_missions() -> None:
    cache = MissionLayerCache(size=2)
    first, second, third = (uuid.uuid4() for _ in range(3))
    cache.put(first, b"1")
    cache.put(second, b"2")
    assert cache.get(first) == b"1"  # now the most recent
    cache.put(third, b"3")
    assert cache.get(second) is None and cache.get(first) == b"1" and cache.get(third) == b"3"


def test_the_page_loads_nothing_from_outside_the_package() -> None:
    index = (STATIC_DIR / "index.html").read_text()
    references = re.findall(r'(?:src|href)="([^"#]+)"', index)
    assert "static/vendor/leaflet/leaflet.js" in references
    for reference in references:
        assert reference == "data:," or (STATIC_DIR.parent / "static" / reference[7:]).is_file()
    vendored = STATIC_DIR / "vendor" / "leaflet"
    assert (vendored / "LICENSE").read_text().startswith("BSD 2-Clause License")
    version = (vendored / "VERSION").read_text().strip()
    assert f't.version="{version}"' in (vendored / "leaflet.js").read_text()
