"""Write GRIB 2 with ecCodes itself: a CF vector field as a forecast's messages.

Used to make GRIB forcing for tests and demos the way a weather centre encodes it (one
message per parameter and step, from ecCodes' own GRIB 2 sample): 10 m wind as
`10u`/`10v`, surface currents as ECMWF's `sve`/`svn` (discipline 10). Reading is
`driftline.forcing.sources.grib`'s business; this module only writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from driftline.forcing.cf import component_names

#: GRIB short names written for each variable's (east, north) pair.
SHORT_NAMES = {"wind": ("10u", "10v"), "current": ("sve", "svn")}
#: Bits per packed value: 24 keeps velocities to ~1e-6 m/s (GRIB's default 16 is coarser).
BITS_PER_VALUE = 24


def write_grib(ds: xr.Dataset, variable: str, path: Path) -> Path:
    """Encode `variable` of a CF (time, lat, lon) dataset as GRIB 2 forecast steps.

    The first time is the reference time; every time is a step from it in hours. Rows
    are written north to south, as weather centres do.
    """
    import eccodes

    names = component_names(ds, variable, {})
    if names is None:
        raise ValueError(f"no {variable} pair (by CF standard name) in the dataset")
    times = ds["time"].values
    lats = np.asarray(ds["lat"].values)[::-1]
    lons = np.asarray(ds["lon"].values)
    reference = times[0].astype("datetime64[s]").item()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for index, moment in enumerate(times):
            step_h = int((moment - times[0]) / np.timedelta64(1, "h"))
            for short, name in zip(SHORT_NAMES[variable], names, strict=True):
                values = np.asarray(ds[name].values[index])[::-1, :]
                handle = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
                try:
                    _set_grid(eccodes, handle, lats, lons)
                    eccodes.codes_set(handle, "dataDate", int(reference.strftime("%Y%m%d")))
                    eccodes.codes_set(handle, "dataTime", int(reference.strftime("%H%M")))
                    eccodes.codes_set(handle, "shortName", short)
                    if variable == "wind":
                        eccodes.codes_set(handle, "typeOfLevel", "heightAboveGround")
                        eccodes.codes_set(handle, "level", 10)
                    eccodes.codes_set(handle, "stepUnits", "h")
                    eccodes.codes_set(handle, "step", step_h)
                    eccodes.codes_set(handle, "bitsPerValue", BITS_PER_VALUE)
                    eccodes.codes_set_values(handle, values.astype("float64").ravel())
                    eccodes.codes_write(handle, out)
                finally:
                    eccodes.codes_release(handle)
    return path


def _set_grid(eccodes: object, handle: int, lats: np.ndarray, lons: np.ndarray) -> None:
    """A regular lat/lon grid, first row north."""
    step = float(abs(lats[1] - lats[0]))
    keys: dict[str, int | float] = {
        "Ni": len(lons),
        "Nj": len(lats),
        "latitudeOfFirstGridPointInDegrees": float(lats[0]),
        "latitudeOfLastGridPointInDegrees": float(lats[-1]),
        "longitudeOfFirstGridPointInDegrees": float(lons[0]) % 360,
        "longitudeOfLastGridPointInDegrees": float(lons[-1]) % 360,
        "iDirectionIncrementInDegrees": float(abs(lons[1] - lons[0])),
        "jDirectionIncrementInDegrees": step,
    }
    for key, value in keys.items():
        eccodes.codes_set(handle, key, value)  # type: ignore[attr-defined]
