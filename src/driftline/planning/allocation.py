"""Stone's optimal allocation of search effort for the exponential detection function.

Maximise sum_j p_j (1 - exp(-z_j / a_j)) subject to sum_j z_j = Z, z_j >= 0, over cells
j of area a_j holding probability p_j. The problem is concave and separable; its
Kuhn-Tucker conditions (Charnes & Cooper 1958, Stone 1975 ch. 2) give the coverage

    c_j = z_j / a_j = max(0, ln(d_j / lambda)),   d_j = p_j / a_j,

with one multiplier lambda fixed by the effort. Sorting cells by density, the cells that
get effort are the k densest for some k, and for that k lambda has the closed form
ln(lambda) = (sum_{j<=k} a_j ln d_j - Z) / sum_{j<=k} a_j: no iteration is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from driftline.planning.detection import pod_array


@dataclass(frozen=True)
class Allocation:
    """Optimal coverage per cell and the probability of success it achieves."""

    coverage: np.ndarray  # same shape as the probability grid
    effort: np.ndarray  # km² per cell
    pos: float
    log_lambda: float


def optimal_allocation(
    probability: np.ndarray, area: np.ndarray | float, effort: float
) -> Allocation:
    """The optimal allocation of `effort` (km²) over cells of `area` (km²) and `probability`."""
    p = np.asarray(probability, dtype=float)
    a = np.broadcast_to(np.asarray(area, dtype=float), p.shape)
    flat_p, flat_a = p.ravel(), a.ravel()
    coverage = np.zeros_like(flat_p)
    useful = np.flatnonzero((flat_p > 0) & (flat_a > 0))
    if effort <= 0 or useful.size == 0:
        zero = coverage.reshape(p.shape)
        return Allocation(zero, zero.copy(), 0.0, float("inf"))
    log_d = np.log(flat_p[useful] / flat_a[useful])
    order = np.argsort(log_d)[::-1]
    log_d_sorted, a_sorted = log_d[order], flat_a[useful][order]
    cum_a = np.cumsum(a_sorted)
    cum_a_log_d = np.cumsum(a_sorted * log_d_sorted)
    log_lambda_k = (cum_a_log_d - effort) / cum_a
    # The right k: lambda at or below the k-th density and at or above the (k+1)-th.
    next_log_d = np.append(log_d_sorted[1:], -np.inf)
    k = int(np.flatnonzero((log_lambda_k <= log_d_sorted) & (log_lambda_k >= next_log_d))[0])
    log_lambda = float(log_lambda_k[k])
    coverage[useful] = np.clip(log_d - log_lambda, 0.0, None)
    coverage = coverage.reshape(p.shape)
    pos = float(np.sum(p * pod_array(coverage)))
    return Allocation(coverage, coverage * a, pos, log_lambda)


def circular_normal_optimal_pos(effort: float, sigma: float) -> float:
    """Koopman's closed form for a circular normal target (docs/search-planning.md):
    POS* = 1 - (1 + u) exp(-u), u = sqrt(Z / (pi sigma²))."""
    u = float(np.sqrt(effort / (np.pi * sigma**2)))
    return 1.0 - (1.0 + u) * float(np.exp(-u))
