"""Koopman's detection function for random search: POD = 1 - exp(-coverage).

Coverage is the effort laid on an area divided by that area: effort Z = W * v * T
(sweep width times speed times time on scene, km²); a parallel sweep with track spacing
S has coverage W / S. Koopman (1946, 1980) derived the exponential law for a searcher
whose track falls at random over the area; it is the conservative law IAMSAR uses.
"""

from __future__ import annotations

import math

import numpy as np

KM_PER_NM = 1.852


def pod(coverage: float) -> float:
    """Probability of detection at `coverage` (random search)."""
    return 1.0 - math.exp(-max(coverage, 0.0))


def pod_array(coverage: np.ndarray) -> np.ndarray:
    return 1.0 - np.exp(-np.clip(coverage, 0.0, None))


def coverage_for_pod(probability: float) -> float:
    """The coverage whose POD is `probability` (< 1)."""
    if not 0.0 <= probability < 1.0:
        raise ValueError("a probability of detection must be in [0, 1)")
    return -math.log(1.0 - probability)


def effort_km2(sweep_width_km: float, speed_kn: float, time_on_scene_h: float) -> float:
    """Search effort Z = W * v * T, in km² (speed in knots)."""
    return sweep_width_km * speed_kn * KM_PER_NM * time_on_scene_h
