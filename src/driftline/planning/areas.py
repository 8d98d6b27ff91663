"""One practical search area per unit: the oriented rectangle that maximises the unit's
probability of success, never overlapping another unit's area.

Inside a rectangle of area A a unit with effort Z lays uniform coverage Z / A (a
parallel sweep), so its POS is (probability inside) * (1 - exp(-Z / A)): a larger
rectangle holds more probability at a thinner coverage, and the best size balances the
two (the one-area version of Stone's allocation). The search is exhaustive on a grid:
for each orientation the weights are binned in the rotated frame, and every rectangle
with edges on the bin edges is scored at once with a summed-area table; the best
rectangle that does not overlap the areas already given is then refined edge by edge
on the particles themselves. Units are served largest effort first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from shapely import Polygon, union_all
from shapely.affinity import rotate
from shapely.geometry.base import BaseGeometry

from driftline.planning.detection import pod

#: Orientations tried (degrees, 0 = long side east-west), plus the cloud's principal axis.
ORIENTATION_STEP_DEG = 10.0
#: Bins per axis of the rotated histogram (every edge pair is scored: bins² / 2 per axis).
BINS = 32
#: Candidates per orientation kept for the overlap check (the bin mask already keeps
#: out rectangles over taken areas; these only meet them in their refinement).
KEEP = 8
#: Overlap below this many km² is rounding, not overlap (shared edges).
OVERLAP_TOLERANCE_KM2 = 1e-6


@dataclass(frozen=True)
class Rectangle:
    """An oriented rectangle in the local frame (km): centre, size and heading."""

    cx: float
    cy: float
    length: float  # along the heading
    width: float  # across it
    angle_deg: float  # of the length axis, counter-clockwise from east

    @property
    def area(self) -> float:
        return self.length * self.width

    @property
    def axes(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """Unit vectors along the length and across it."""
        t = math.radians(self.angle_deg)
        return (math.cos(t), math.sin(t)), (-math.sin(t), math.cos(t))

    def corners(self) -> list[tuple[float, float]]:
        (ux, uy), (vx, vy) = self.axes
        hl, hw = self.length / 2, self.width / 2
        return [
            (self.cx + su * hl * ux + sv * hw * vx, self.cy + su * hl * uy + sv * hw * vy)
            for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ]

    def polygon(self) -> Polygon:
        return Polygon(self.corners())

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        (ux, uy), (vx, vy) = self.axes
        dx, dy = x - self.cx, y - self.cy
        u, v = dx * ux + dy * uy, dx * vx + dy * vy
        return (np.abs(u) <= self.length / 2 + 1e-9) & (np.abs(v) <= self.width / 2 + 1e-9)


def rectangle_pos(
    rect: Rectangle, x: np.ndarray, y: np.ndarray, w: np.ndarray, effort: float
) -> float:
    """POS of searching `rect` uniformly with `effort`: containment times POD."""
    if rect.area <= 0:
        return 0.0
    return float(w[rect.contains(x, y)].sum()) * pod(effort / rect.area)


def overlaps(candidate: Polygon, taken: Sequence[Polygon]) -> bool:
    return any(candidate.intersection(p).area > OVERLAP_TOLERANCE_KM2 for p in taken)


def fit_rectangle(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    effort: float,
    taken: Sequence[Polygon] = (),
    *,
    min_side_km: float = 0.0,
) -> Rectangle | None:
    """The non-overlapping rectangle with the highest POS for `effort`, or None when
    every candidate overlaps the areas `taken` (or no weight is left)."""
    live = w > 0
    if not live.any() or effort <= 0:
        return None
    x, y, w = x[live], y[live], w[live]
    candidates: list[tuple[float, Rectangle]] = []
    blocked = union_all(list(taken)).buffer(-1e-6) if taken else None
    for angle in _orientations(x, y, w):
        candidates += _candidates(x, y, w, effort, angle, min_side_km, blocked)
    candidates.sort(key=lambda c: c[0], reverse=True)
    for _, rect in candidates:
        if not overlaps(rect.polygon(), taken):
            return _refine(rect, x, y, w, effort, taken, min_side_km)
    return None


def _orientations(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> list[float]:
    angles = [float(a) for a in np.arange(0.0, 180.0, ORIENTATION_STEP_DEG)]
    if x.size > 2:
        cov = np.cov(np.vstack([x, y]), aweights=w)
        values, vectors = np.linalg.eigh(cov)
        major = vectors[:, int(np.argmax(values))]
        angles.append(math.degrees(math.atan2(major[1], major[0])) % 180.0)
    return angles


def _candidates(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    effort: float,
    angle: float,
    min_side: float,
    blocked: BaseGeometry | None,
) -> list[tuple[float, Rectangle]]:
    """The best rectangles with edges on the bin edges of the frame rotated by `angle`;
    rectangles holding a bin that touches the `blocked` (taken) area are left out."""
    t = math.radians(angle)
    u = x * math.cos(t) + y * math.sin(t)
    v = -x * math.sin(t) + y * math.cos(t)
    eu, ev = _edges(u), _edges(v)
    hist, _, _ = np.histogram2d(u, v, bins=[eu, ev], weights=w)
    table = np.zeros((BINS + 1, BINS + 1))
    table[1:, 1:] = hist.cumsum(0).cumsum(1)
    i0, i1 = np.triu_indices(BINS + 1, 1)
    lengths = eu[i1] - eu[i0]
    widths = ev[i1] - ev[i0]
    mass = (
        table[np.ix_(i1, i1)]
        - table[np.ix_(i0, i1)]
        - table[np.ix_(i1, i0)]
        + table[np.ix_(i0, i0)]
    )
    area = np.maximum(lengths[:, None] * widths[None, :], 1e-12)
    score = mass * (1.0 - np.exp(-effort / area))
    if blocked is not None and not blocked.is_empty:
        hits = _blocked_bins(eu, ev, angle, blocked)
        count = np.zeros((BINS + 1, BINS + 1))
        count[1:, 1:] = hits.cumsum(0).cumsum(1)
        overlapping = (
            count[np.ix_(i1, i1)]
            - count[np.ix_(i0, i1)]
            - count[np.ix_(i1, i0)]
            + count[np.ix_(i0, i0)]
        )
        score[overlapping > 0] = -1.0
    if min_side > 0:
        score[(lengths[:, None] < min_side) | (widths[None, :] < min_side)] = -1.0
    flat_score = score.ravel()
    # A threshold first: a partial sort of every rectangle costs more than scoring them.
    top = np.flatnonzero(flat_score >= 0.97 * float(flat_score.max()))
    best = top[np.argsort(flat_score[top])[::-1]][:KEEP]
    out = []
    for flat in best:
        a, b = np.unravel_index(flat, score.shape)
        u_lo, u_hi, v_lo, v_hi = eu[i0[a]], eu[i1[a]], ev[i0[b]], ev[i1[b]]
        rect = _from_rotated(float(u_lo), float(u_hi), float(v_lo), float(v_hi), angle)
        out.append((float(score[a, b]), rect))
    return out


def _blocked_bins(
    eu: np.ndarray, ev: np.ndarray, angle: float, blocked: BaseGeometry
) -> np.ndarray:
    """1 for each bin (of the rotated frame) that reaches into `blocked`, else 0."""
    rotated = rotate(blocked, -angle, origin=(0, 0))
    lo_u, lo_v = np.meshgrid(eu[:-1], ev[:-1], indexing="ij")
    hi_u, hi_v = np.meshgrid(eu[1:], ev[1:], indexing="ij")
    boxes = shapely.box(lo_u.ravel(), lo_v.ravel(), hi_u.ravel(), hi_v.ravel())
    return shapely.intersects(boxes, rotated).reshape(lo_u.shape).astype(float)


def _edges(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    pad = max((hi - lo) * 1e-6, 1e-6)
    return np.linspace(lo - pad, hi + pad, BINS + 1)


def _from_rotated(u_lo: float, u_hi: float, v_lo: float, v_hi: float, angle: float) -> Rectangle:
    t = math.radians(angle)
    uc, vc = (u_lo + u_hi) / 2, (v_lo + v_hi) / 2
    cx, cy = uc * math.cos(t) - vc * math.sin(t), uc * math.sin(t) + vc * math.cos(t)
    return Rectangle(float(cx), float(cy), float(u_hi - u_lo), float(v_hi - v_lo), float(angle))


def _refine(
    rect: Rectangle,
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    effort: float,
    taken: Sequence[Polygon],
    min_side: float,
) -> Rectangle:
    """Move each edge in or out while the POS improves and nothing is overlapped."""
    best, best_pos = rect, rectangle_pos(rect, x, y, w, effort)
    step = max(rect.length, rect.width) / BINS
    while step > max(rect.length, rect.width) / (BINS * 32):
        improved = False
        for edge in range(4):
            for sign in (1.0, -1.0):
                trial = _moved(best, edge, sign * step)
                if trial is None or min(trial.length, trial.width) < min_side:
                    continue
                trial_pos = rectangle_pos(trial, x, y, w, effort)
                if trial_pos > best_pos + 1e-12 and not overlaps(trial.polygon(), taken):
                    best, best_pos, improved = trial, trial_pos, True
        if not improved:
            step /= 2
    return best


def _moved(rect: Rectangle, edge: int, delta: float) -> Rectangle | None:
    """`rect` with one edge (0: -length, 1: +length, 2: -width, 3: +width) moved out by `delta`."""
    (ux, uy), (vx, vy) = rect.axes
    along = edge < 2
    outward = -1.0 if edge in (0, 2) else 1.0
    size = (rect.length if along else rect.width) + delta
    if size <= 1e-6:
        return None
    shift = outward * delta / 2
    dx, dy = (ux, uy) if along else (vx, vy)
    return Rectangle(
        rect.cx + shift * dx,
        rect.cy + shift * dy,
        size if along else rect.length,
        rect.width if along else size,
        rect.angle_deg,
    )


def split_rectangle(rect: Rectangle, shares: Sequence[float]) -> list[Rectangle]:
    """`rect` cut across its long side into strips whose areas are in the ratio of
    `shares`: units sharing one area with equal coverage, and no overlap by construction."""
    total = float(sum(shares))
    (ux, uy), (vx, vy) = rect.axes
    along_length = rect.length >= rect.width
    long_side = rect.length if along_length else rect.width
    dx, dy = (ux, uy) if along_length else (vx, vy)
    strips, start = [], -long_side / 2
    for share in shares:
        size = long_side * share / total
        mid = start + size / 2
        cx, cy = rect.cx + mid * dx, rect.cy + mid * dy
        if along_length:
            strips.append(Rectangle(cx, cy, size, rect.width, rect.angle_deg))
        else:
            strips.append(Rectangle(cx, cy, rect.length, size, rect.angle_deg))
        start += size
    return strips
