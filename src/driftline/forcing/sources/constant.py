"""The `constant` kind: uniform (u, v) values everywhere, always; synthetic by definition.

Meant for tests and analytic checks (e.g. no wind), so a catalog must allow it
explicitly and results say `synthetic_forcing: true`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import xarray as xr

from driftline.forcing.cf import OUTPUT_NAMES, to_datetime64, vector_dataset
from driftline.forcing.model import BBox
from driftline.forcing.sources.base import ForcingSource

#: Grid spacing of the written field: fine enough that no reader extrapolates.
GRID_DEG = 0.1


class ConstantSource(ForcingSource):
    """The values in the config's `values[variable]`, on a regular hourly grid."""

    kind = "constant"
    synthetic = True

    def check(self) -> None:
        if not self.config.synthetic_allowed:
            raise self.invalid(
                "constant forcing is synthetic; set synthetic_allowed: true to allow it"
            )

    def coverage(self) -> None:
        return None  # uniform values cover any place and time

    def subset(self, variable: str, box: BBox, start: datetime, end: datetime) -> xr.Dataset:
        u_value, v_value = self.config.values[variable]
        lats = np.arange(box.lat_min, box.lat_max + GRID_DEG / 2, GRID_DEG)
        lons = np.arange(box.lon_min, box.lon_max + GRID_DEG / 2, GRID_DEG)
        hours = int((end - start) / timedelta(hours=1))
        times = np.array([to_datetime64(start + timedelta(hours=h)) for h in range(hours + 1)])
        shape = (len(times), len(lats), len(lons))
        names = OUTPUT_NAMES[variable]
        return vector_dataset(
            names,
            names,
            (np.full(shape, u_value, "float32"), np.full(shape, v_value, "float32")),
            (times, lats, lons),
            source=f"driftline constant {self.name} (synthetic)",
        )
