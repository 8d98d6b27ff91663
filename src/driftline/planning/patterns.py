"""Search patterns over a unit's rectangle: parallel sweep, or expanding square for a
small area around a well-known position (IAMSAR Vol. II, ch. 5).

Track spacing is the sweep width over the coverage the allocation chose (S = W / C), so
the track a unit can steam or fly in its time on scene just fills the rectangle. Legs
run along the rectangle's long side; the first leg starts half a spacing inside.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from driftline.planning.areas import Rectangle

#: An area no wider than this many track spacings, and nearly square, is "small and
#: certain": searched from its centre outwards (expanding square).
EXPANDING_SQUARE_MAX_SPACINGS = 6
EXPANDING_SQUARE_MAX_ASPECT = 1.3


class PatternKind(StrEnum):
    PARALLEL_SWEEP = "parallel_sweep"
    EXPANDING_SQUARE = "expanding_square"


@dataclass(frozen=True)
class TrackPoint:
    """A waypoint in the local frame (km) and the hours after commence it is reached."""

    x: float
    y: float
    hours: float


@dataclass(frozen=True)
class Pattern:
    kind: PatternKind
    track_spacing_km: float
    legs: int
    points: list[TrackPoint]

    @property
    def track_length_km(self) -> float:
        return sum(
            math.hypot(b.x - a.x, b.y - a.y)
            for a, b in zip(self.points, self.points[1:], strict=False)
        )


def choose_pattern(
    rect: Rectangle, sweep_width_km: float, coverage: float, speed_kmh: float
) -> Pattern:
    """Expanding square for a small, nearly square area; parallel sweep otherwise."""
    spacing = sweep_width_km / coverage if coverage > 0 else sweep_width_km
    long_side, short_side = max(rect.length, rect.width), min(rect.length, rect.width)
    small = long_side <= EXPANDING_SQUARE_MAX_SPACINGS * spacing
    squarish = long_side <= EXPANDING_SQUARE_MAX_ASPECT * max(short_side, 1e-9)
    if small and squarish:
        return expanding_square(rect, spacing, speed_kmh)
    return parallel_sweep(rect, spacing, speed_kmh)


def _timed(points: list[tuple[float, float]], speed_kmh: float) -> list[TrackPoint]:
    timed, hours = [], 0.0
    for i, (x, y) in enumerate(points):
        if i:
            px, py = points[i - 1]
            hours += math.hypot(x - px, y - py) / speed_kmh
        timed.append(TrackPoint(x, y, hours))
    return timed


def parallel_sweep(rect: Rectangle, spacing_km: float, speed_kmh: float) -> Pattern:
    """Legs along the long side, `spacing_km` apart (rounded so they fill the width)."""
    (ux, uy), (vx, vy) = rect.axes
    length, width = rect.length, rect.width
    if width > length:  # legs run along the long side
        (ux, uy), (vx, vy) = (vx, vy), (-ux, -uy)
        length, width = width, length
    legs = max(1, round(width / spacing_km))
    spacing = width / legs
    half = max(length / 2 - spacing / 2, 0.0)
    points: list[tuple[float, float]] = []
    for k in range(legs):
        offset = -width / 2 + spacing * (k + 0.5)
        ends = (-half, half) if k % 2 == 0 else (half, -half)
        for along in ends:
            points.append((rect.cx + along * ux + offset * vx, rect.cy + along * uy + offset * vy))
    return Pattern(PatternKind.PARALLEL_SWEEP, spacing, legs, _timed(points, speed_kmh))


def expanding_square(rect: Rectangle, spacing_km: float, speed_kmh: float) -> Pattern:
    """From the centre outwards: legs of 1, 1, 2, 2, 3, 3, ... spacings, turning right,
    until the square covers the rectangle's long side."""
    (ux, uy), (vx, vy) = rect.axes
    directions = [(ux, uy), (-vx, -vy), (-ux, -uy), (vx, vy)]  # ahead, right, back, left
    side = max(rect.length, rect.width)
    x, y = rect.cx, rect.cy
    points = [(x, y)]
    leg = 0
    while True:
        steps = leg // 2 + 1
        if steps * spacing_km > side + 1e-9:
            break
        dx, dy = directions[leg % 4]
        x, y = x + dx * steps * spacing_km, y + dy * steps * spacing_km
        points.append((x, y))
        leg += 1
    return Pattern(PatternKind.EXPANDING_SQUARE, spacing_km, leg, _timed(points, speed_kmh))
