"""Text encodings of the products: GeoJSON (RFC 7946) feature collections and KML.

Pure functions from the computed regions, datums and strandings to text; no file I/O.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shapely.geometry import mapping

from driftline.contracts.envelope import rfc3339
from driftline.postprocess.cloud import Cloud, Datum
from driftline.postprocess.containment import Region, TimedRegions, area_km2, polygons

Feature = dict[str, Any]

#: KML colours (aabbggrr) per containment level; other levels are drawn white.
KML_COLOURS = {50: "ff0000ff", 90: "ff00a5ff", 95: "ff00ffff"}


def feature_collection(features: list[Feature]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": features}, indent=1)


def containment_features(regions: TimedRegions) -> list[Feature]:
    return [
        {
            "type": "Feature",
            "geometry": mapping(shape),
            "properties": {
                "level": level,
                "time": rfc3339(moment),
                "area_km2": round(area_km2(shape), 3),
            },
        }
        for (moment, level), shape in regions.items()
    ]


def datum_features(datums: list[Datum]) -> list[Feature]:
    """The datum track as one line (when there are two datums or more), then each datum."""
    track: list[Feature] = []
    if len(datums) > 1:
        coordinates = [[round(d.lon, 6), round(d.lat, 6)] for d in datums]
        track.append(
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": coordinates},
                "properties": {"kind": "datum track"},
            }
        )
    return track + [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [d.lon, d.lat]},
            "properties": {"kind": "datum", "time": rfc3339(d.time)},
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


def containment_kml(regions: TimedRegions, title: str) -> str:
    marks = "".join(_placemark(moment, level, shape) for (moment, level), shape in regions.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">'
        f"<Document><name>{title}</name>{marks}</Document></kml>\n"
    )


def _placemark(moment: datetime, level: int, shape: Region) -> str:
    rings = "".join(
        "<Polygon><outerBoundaryIs><LinearRing><coordinates>"
        + " ".join(f"{x:.6f},{y:.6f},0" for x, y in p.exterior.coords)
        + "</coordinates></LinearRing></outerBoundaryIs></Polygon>"
        for p in polygons(shape)
    )
    return (
        f"<Placemark><name>{level} % containment {rfc3339(moment)}</name>"
        f"<TimeStamp><when>{rfc3339(moment)}</when></TimeStamp>"
        f"<Style><LineStyle><color>{KML_COLOURS.get(level, 'ffffffff')}</color>"
        "<width>2</width></LineStyle><PolyStyle><fill>0</fill></PolyStyle></Style>"
        f"<MultiGeometry>{rings}</MultiGeometry></Placemark>"
    )
