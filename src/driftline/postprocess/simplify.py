"""Containment regions a chart plotter accepts: few vertices, and still holding their share.

A containment region is a union of grid cells: a staircase outline of hundreds of
vertices, more than a plotter takes in one route or area (many accept 100 to 250
points). `plotter_region` grows the region a little (a morphological closing with a
margin) and simplifies it, raising the tolerance until every ring has at most
`MAX_RING_VERTICES`; it only accepts a candidate that covers the exact region, so the
simplified 90 % area still holds at least 90 % of the particles. The smallest rotated
rectangle around the region is the last resort: it always covers.
"""

from __future__ import annotations

import math

from shapely import make_valid, minimum_rotated_rectangle, union_all

from driftline.postprocess.containment import Region, oriented, polygons

#: Most vertices in one ring (the closing point counted) of an exported area.
MAX_RING_VERTICES = 100
#: Tolerance steps tried before the convex hull.
ATTEMPTS = 40


def ring_sizes(shape: Region) -> list[int]:
    """Vertices of every ring of the region, exteriors and holes."""
    return [
        len(ring.coords)
        for polygon in polygons(shape)
        for ring in (polygon.exterior, *polygon.interiors)
    ]


def plotter_region(shape: Region, max_vertices: int = MAX_RING_VERTICES) -> Region:
    """A region covering `shape` whose rings have at most `max_vertices` vertices.

    Parts that fit stay as they are; each other part is simplified on its own (so one
    ragged part does not grow the others), then the whole again if merging them made a
    ring too long.
    """
    if shape.is_empty or max(ring_sizes(shape)) <= max_vertices:
        return shape
    parts = [
        part if max(ring_sizes(part)) <= max_vertices else _covering(part, max_vertices)
        for part in polygons(shape)
    ]
    merged = oriented(make_valid(union_all(parts)))
    if max(ring_sizes(merged)) <= max_vertices and merged.covers(shape):
        return merged
    return _covering(shape, max_vertices)


def _covering(shape: Region, max_vertices: int) -> Region:
    """Buffer a little and simplify, raising the tolerance until the rings fit; only a
    candidate that covers `shape` is taken."""
    # Start well below the grid's cell size (the region's scale over its vertex count).
    tolerance = math.sqrt(shape.area) / max(ring_sizes(shape)) / 4
    for _ in range(ATTEMPTS):
        # Grow by 2t and shrink by t (a closing that fills notches and keeps a margin of
        # t), then drop vertices within t/2 of the outline: the margin keeps it covering.
        grown = shape.buffer(2 * tolerance, join_style="mitre")
        closed = grown.buffer(-tolerance, join_style="mitre")
        candidate = oriented(make_valid(closed.simplify(tolerance / 2)))
        if (
            not candidate.is_empty
            and candidate.covers(shape)
            and max(ring_sizes(candidate)) <= max_vertices
        ):
            return candidate
        tolerance *= 1.25
    return _rectangle(shape)


def _rectangle(shape: Region) -> Region:
    """The smallest rotated rectangle around the region: five points, always covers."""
    return oriented(minimum_rotated_rectangle(shape))
