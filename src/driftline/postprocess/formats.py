"""Text encodings of the products: GeoJSON (RFC 7946) feature collections.

KML and the other GIS and plotter formats are written by GDAL (`exports`).

Pure functions from the computed regions, datums and strandings to text; no file I/O.
"""

from __future__ import annotations

import json
from typing import Any

from shapely.geometry import mapping

from driftline.contracts.envelope import rfc3339
from driftline.postprocess.cloud import Cloud, Datum
from driftline.postprocess.containment import TimedRegions, area_km2

Feature = dict[str, Any]


def feature_collection(features: list[Feature]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": features}, indent=1)


def _of(scenario: str | None) -> dict[str, str]:
    """A scenario's features say which; the union's stay as they always were."""
    return {} if scenario is None else {"scenario": scenario}


def containment_features(regions: TimedRegions, scenario: str | None = None) -> list[Feature]:
    return [
        {
            "type": "Feature",
            "geometry": mapping(shape),
            "properties": {
                "level": level,
                "time": rfc3339(moment),
                "area_km2": round(area_km2(shape), 3),
                **_of(scenario),
            },
        }
        for (moment, level), shape in regions.items()
    ]


def datum_features(datums: list[Datum], scenario: str | None = None) -> list[Feature]:
    """The datum track as one line (when there are two datums or more), then each datum."""
    track: list[Feature] = []
    if len(datums) > 1:
        coordinates = [[round(d.lon, 6), round(d.lat, 6)] for d in datums]
        track.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": coordinates},
                "properties": {"kind": "datum track", **_of(scenario)},
            }
        )
    return track + [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [d.lon, d.lat]},
            "properties": {"kind": "datum", "time": rfc3339(d.time), **_of(scenario)},
        }
        for d in datums
    ]


def stranded_features(cloud: Cloud) -> list[Feature]:
    return [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [x, y]},
            "properties": {"kind": "stranded"},
        }
        for x, y in zip(cloud.stranded_lon, cloud.stranded_lat, strict=True)
    ]
