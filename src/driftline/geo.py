"""Flat-earth geodesy shared by forcing and products: kilometres to and from degrees.

Good enough for padding boxes, sizing grids and drawing scale bars over a few hundred
km; anything that needs real distances or areas uses pyproj's `Geod` instead.
"""

from __future__ import annotations

import math

#: Kilometres per degree of latitude (and of longitude on the equator).
KM_PER_DEG = 111.2
#: Smallest cos(latitude) used when converting to degrees of longitude, so boxes near a
#: pole stay finite instead of spanning the globe.
MIN_COS_LAT = 0.05


def cos_lat(lat_deg: float, floor: float = MIN_COS_LAT) -> float:
    """cos(latitude), never below `floor`: how much a degree of longitude shrinks there."""
    return max(math.cos(math.radians(lat_deg)), floor)


def km_to_deg_lat(km: float) -> float:
    """Degrees of latitude spanning `km`."""
    return km / KM_PER_DEG


def km_to_deg_lon(km: float, lat_deg: float, floor: float = MIN_COS_LAT) -> float:
    """Degrees of longitude spanning `km` at latitude `lat_deg`."""
    return km / (KM_PER_DEG * cos_lat(lat_deg, floor))
