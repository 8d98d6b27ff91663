"""Recorded searches as the planner applies them: what each covered, at what coverage.

An area searched is given with its achieved POD, or with the sweep width and track
spacing used (coverage W / S). Flown tracks are turned into the corridor they swept
(the track buffered by half a sweep width), with coverage W * length / corridor area
(about 1 along a single track: POD 63 %, Koopman's random-search law).
"""

from __future__ import annotations

from shapely import LineString, MultiLineString
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform

from driftline.contracts.plans import SearchRecord
from driftline.planning.bayes import SearchedArea
from driftline.planning.detection import coverage_for_pod
from driftline.planning.frame import LocalFrame
from driftline.planning.planner import RecordedSearch


def recorded_search(record: SearchRecord) -> RecordedSearch:
    """The planner's view of one recorded search."""
    geometry = shape(record.geometry.model_dump())
    if isinstance(geometry, LineString | MultiLineString):
        return RecordedSearch(record.searched_at, [_swept_corridor(geometry, record)])
    if record.pod is not None:
        coverage = coverage_for_pod(record.pod)
    else:
        assert record.sweep_width_km and record.track_spacing_km  # checked by SearchCreate
        coverage = record.sweep_width_km / record.track_spacing_km
    return RecordedSearch(record.searched_at, [SearchedArea(geometry, coverage)])


def _swept_corridor(tracks: BaseGeometry, record: SearchRecord) -> SearchedArea:
    assert record.sweep_width_km is not None  # checked by SearchCreate
    centre = tracks.centroid
    frame = LocalFrame(centre.x, centre.y)
    in_km = transform(lambda x, y, z=None: frame.to_xy(x, y), tracks)
    corridor_km = in_km.buffer(record.sweep_width_km / 2, cap_style="flat")
    coverage = record.sweep_width_km * in_km.length / corridor_km.area
    corridor = transform(lambda x, y, z=None: frame.to_lonlat(x, y), corridor_km)
    return SearchedArea(corridor, coverage)
