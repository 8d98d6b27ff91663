"""Sweep widths: the IAMSAR table shipped as data (`sweep_widths.json`, its source cited
inside), looked up by search object, unit type and visibility, with the weather and
fatigue corrections.

A Leeway object type maps to the table's search-object class by its key's prefix; the
smallest raft class stands for every life raft (a smaller sweep width plans a denser,
more cautious search). Objects without a row (debris, drums, containers) need the
sweep width given by the coordinator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from driftline.contracts.plans import UnitType
from driftline.errors import PermanentError
from driftline.planning.detection import KM_PER_NM

TABLE_PATH = Path(__file__).with_name("sweep_widths.json")


class NoSweepWidth(PermanentError):
    """The table has no sweep width for this object: the coordinator must give one."""

    def __init__(self, detail: str) -> None:
        super().__init__("no_sweep_width", detail)


@dataclass(frozen=True)
class SweepWidth:
    """A corrected sweep width and how it was obtained."""

    km: float
    uncorrected_km: float
    object_class: str | None
    weather_factor: float
    fatigue_factor: float
    source: str  # "given" or the table's citation

    @property
    def nm(self) -> float:
        return self.km / KM_PER_NM


@cache
def sweep_width_table() -> dict[str, Any]:
    table: dict[str, Any] = json.loads(TABLE_PATH.read_text())
    return table


def object_class(object_type: str) -> str | None:
    """The table's search-object class of a Leeway object key, or None."""
    for prefix, name in sweep_width_table()["leeway_object_classes"].items():
        if object_type.upper().startswith(prefix):
            return str(name)
    return None


def weather_factor(object_cls: str | None, wind_kt: float, sea_m: float) -> float:
    """IAMSAR's weather correction: the worse of wind and sea picks the row."""
    table = sweep_width_table()
    small = object_cls is None or object_cls in table["small_objects"]
    for row in table["weather_correction"]["categories"]:
        wind_ok = row["max_wind_kt"] is None or wind_kt <= row["max_wind_kt"]
        sea_ok = row["max_sea_m"] is None or sea_m <= row["max_sea_m"]
        if wind_ok and sea_ok:
            return float(row["small" if small else "other"])
    raise AssertionError("the last weather row takes everything")


def corrected_sweep_width(
    *,
    object_type: str,
    unit_type: UnitType,
    visibility_nm: float,
    wind_kt: float = 0.0,
    sea_m: float = 0.0,
    fatigue: bool = False,
    given_km: float | None = None,
) -> SweepWidth:
    """The sweep width a unit searches with: given, or from the table, then corrected.

    A given sweep width is taken as already corrected (the coordinator knows better).
    """
    table = sweep_width_table()
    cls = object_class(object_type)
    if given_km is not None:
        return SweepWidth(given_km, given_km, cls, 1.0, 1.0, "given")
    rows = table["sweep_width_nm"][unit_type.value]
    if cls is None or cls not in rows:
        raise NoSweepWidth(
            f"the sweep-width table has no row for object type {object_type}; give the "
            "unit's sweep_width_km"
        )
    visibilities = np.array(table["visibility_nm"][unit_type.value], dtype=float)
    uncorrected = float(np.interp(visibility_nm, visibilities, np.array(rows[cls]))) * KM_PER_NM
    weather = weather_factor(cls, wind_kt, sea_m)
    tired = float(table["fatigue_correction"]) if fatigue else 1.0
    return SweepWidth(
        uncorrected * weather * tired, uncorrected, cls, weather, tired, table["source"]
    )
