"""Search theory, validated against closed forms (issue 14's Validation list)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy.special import erf

from driftline.contracts.plans import UnitType
from driftline.planning.allocation import circular_normal_optimal_pos, optimal_allocation
from driftline.planning.bayes import (
    SearchedArea,
    normalised,
    pod_of_search,
    update,
    weight_inside,
    weighted_containment,
)
from driftline.planning.detection import coverage_for_pod, effort_km2, pod
from driftline.planning.frame import LocalFrame
from driftline.planning.planner import RecordedSearch, UnitSpec, plan_search
from driftline.planning.sweep_width import SweepWidth

T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)


def _unit(name: str, effort: float, speed_kn: float = 10.0, width_km: float = 2.0) -> UnitSpec:
    """A unit whose effort (W * v * T) is `effort` km²."""
    hours = effort / (width_km * speed_kn * 1.852)
    sweep = SweepWidth(width_km, width_km, None, 1.0, 1.0, "given")
    return UnitSpec(name, UnitType.VESSEL, speed_kn, hours, sweep)


def _cloud(x: np.ndarray, y: np.ndarray) -> tuple[list[datetime], np.ndarray, np.ndarray]:
    """Positions in km around 60 N 4 E as a one-time particle cloud (lon/lat)."""
    lon, lat = LocalFrame(4.0, 60.0).to_lonlat(x, y)
    return [T0], lon[:, None], lat[:, None]


def _normal_grid(sigma: float, half_width: float, cells: int) -> tuple[np.ndarray, float]:
    """Exact cell probabilities of a circular normal on a square grid, and the cell area."""
    edges = np.linspace(-half_width, half_width, cells + 1)
    cdf = 0.5 * (1 + erf(edges / (sigma * math.sqrt(2))))
    marginal = np.diff(cdf)
    return np.outer(marginal, marginal), float((edges[1] - edges[0]) ** 2)


# -- 1. uniform probability in a square ---------------------------------------------------


@pytest.mark.parametrize("ratio", [0.25, 1.0, 2.0])
def test_uniform_square_pos_is_one_minus_exp_of_effort_over_area(ratio: float) -> None:
    side = 20.0
    area = side * side
    effort = ratio * area
    expected = 1 - math.exp(-effort / area)

    grid = np.full((50, 50), 1 / 2500)
    allocation = optimal_allocation(grid, area / 2500, effort)
    assert allocation.pos == pytest.approx(expected, rel=0.01)
    assert np.allclose(allocation.coverage, effort / area)  # uniform coverage is optimal

    rng = np.random.default_rng(7)
    n = 150
    cells = (np.arange(n)[:, None] + rng.random((n, n))) / n * side - side / 2
    along = (np.arange(n)[None, :] + rng.random((n, n))) / n * side - side / 2
    times, lon, lat = _cloud(cells.ravel(), along.ravel())
    plan = plan_search(times, lon, lat, commence=T0, units=[_unit("A", effort)])
    assert plan.pos == pytest.approx(expected, rel=0.01)
    (unit,) = plan.units
    assert unit.area_km2 == pytest.approx(area, rel=0.01)


# -- 2. circular normal: Koopman's closed form -----------------------------------------------


@pytest.mark.parametrize("effort_over_sigma2", [0.5, 2.0, 4 * math.pi, 40.0])
def test_circular_normal_optimal_pos_matches_closed_form(effort_over_sigma2: float) -> None:
    sigma = 3.0
    effort = effort_over_sigma2 * sigma**2
    grid, cell_area = _normal_grid(sigma, 8 * sigma, 320)
    allocation = optimal_allocation(grid, cell_area, effort)
    closed_form = circular_normal_optimal_pos(effort, sigma)
    assert allocation.pos == pytest.approx(closed_form, rel=0.02)
    assert allocation.effort.sum() == pytest.approx(effort, rel=1e-9)

    # The best single centred square of the same effort does worse.
    sides = np.linspace(0.05, 8, 4000) * sigma
    in_square = erf(sides / (2 * math.sqrt(2) * sigma)) ** 2
    best_square = float(np.max(in_square * (1 - np.exp(-effort / sides**2))))
    assert allocation.pos > best_square


def test_circular_normal_particles_reach_the_closed_form_bound() -> None:
    """The plan's `optimal_pos`, computed on sampled particles, agrees with the formula."""
    sigma, effort = 3.0, 4 * math.pi * 9.0
    rng = np.random.default_rng(11)
    times, lon, lat = _cloud(rng.normal(0, sigma, 60000), rng.normal(0, sigma, 60000))
    plan = plan_search(times, lon, lat, commence=T0, units=[_unit("A", effort)])
    assert plan.optimal_pos == pytest.approx(circular_normal_optimal_pos(effort, sigma), rel=0.02)
    assert plan.pos <= plan.optimal_pos + 1e-9  # no practical plan beats the optimum


def test_closed_form_values() -> None:
    # u = sqrt(Z / (pi sigma^2)) = 2: 1 - 3 e^-2.
    assert circular_normal_optimal_pos(4 * math.pi, 1.0) == pytest.approx(1 - 3 * math.exp(-2))
    assert circular_normal_optimal_pos(0.0, 1.0) == 0.0


# -- 3. two units: no overlap, POS adds up ----------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_two_units_get_disjoint_areas_whose_pos_sums_to_the_plans(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 6, 20000)
    y = rng.normal(0, 2.5, 20000) + 0.3 * x
    times, lon, lat = _cloud(x, y)
    units = [_unit("RESCUE 1", 60.0), _unit("HELO 2", 90.0, speed_kn=90, width_km=1.0)]
    plan = plan_search(times, lon, lat, commence=T0, units=units)
    first, second = plan.units
    overlap = first.rectangle.polygon().intersection(second.rectangle.polygon()).area
    assert overlap < 1e-6
    assert first.pos + second.pos == pytest.approx(plan.pos, abs=1e-9)
    assert [u.unit.name for u in plan.units] == ["RESCUE 1", "HELO 2"]
    assert 0 < plan.pos <= plan.optimal_pos + 1e-9
    assert plan.cumulative_pos_after == pytest.approx(plan.pos)  # nothing searched before


# -- 4. Bayes: a failed search of the 50 % area -----------------------------------------------


def test_failed_search_of_the_50_percent_area_applies_the_bayes_factor() -> None:
    rng = np.random.default_rng(5)
    lon = 4 + rng.normal(0, 0.05, 8000)
    lat = 60 + rng.normal(0, 0.02, 8000)
    prior = np.full(lon.size, 1 / lon.size)
    region = weighted_containment(lon, lat, prior, levels=(50,))[50]
    inside_before = weight_inside(region, lon, lat, prior)
    assert inside_before == pytest.approx(0.5, abs=0.01)

    detected = pod_of_search(lon, lat, [SearchedArea(region, coverage_for_pod(0.8))])
    posterior = normalised(update(prior, detected))

    assert posterior.sum() == pytest.approx(1.0, abs=1e-12)
    bayes = inside_before * 0.2 / (1 - 0.8 * inside_before)  # P(A | not found)
    assert weight_inside(region, lon, lat, posterior) == pytest.approx(bayes, abs=1e-12)
    assert bayes == pytest.approx(1 / 6, abs=0.01)
    outside = detected == 0
    factor = 1 / (1 - 0.8 * inside_before)
    assert np.allclose(posterior[outside], prior[outside] * factor)
    assert np.allclose(posterior[~outside], prior[~outside] * 0.2 * factor)


def test_searches_lower_the_next_plan_and_raise_cumulative_pos() -> None:
    rng = np.random.default_rng(9)
    x, y = rng.normal(0, 4, 10000), rng.normal(0, 4, 10000)
    times, lon, lat = _cloud(x, y)
    units = [_unit("A", 50.0)]
    first = plan_search(times, lon, lat, commence=T0, units=units)
    (area,) = first.units
    searched = RecordedSearch(T0, [SearchedArea(area.outline(), area.coverage)])
    second = plan_search(times, lon, lat, commence=T0, units=units, searches=[searched])
    assert second.cumulative_pos_before == pytest.approx(first.cumulative_pos_after, abs=1e-9)
    assert second.cumulative_pos_after > second.cumulative_pos_before > 0
    # The searched area is less likely now, and the next plan expects less of itself.
    pmap = second.map
    left_inside = weight_inside(area.outline(), pmap.lon, pmap.lat, pmap.weights)
    assert left_inside / pmap.weights.sum() < area.poc * (1 - area.pod) / (1 - area.pos) + 1e-9
    assert second.pos < first.pos
    assert second.map.weights.sum() == pytest.approx(1.0)  # the posterior: given not found


def test_detection_function_and_effort() -> None:
    assert pod(1.0) == pytest.approx(1 - math.exp(-1))
    assert coverage_for_pod(0.8) == pytest.approx(-math.log(0.2))
    assert effort_km2(2.0, 10.0, 3.0) == pytest.approx(2.0 * 18.52 * 3.0)


def test_search_history_uses_positions_at_each_search_time() -> None:
    """A search at an earlier time updates the trajectories that were there then."""
    n = 1000
    lon = np.stack([np.full(n, 4.0), np.linspace(3.9, 4.1, n)], axis=1)
    lat = np.full((n, 2), 60.0)
    lon[: n // 2, 0] = 4.5  # half the particles start far away
    from shapely import box

    searched = RecordedSearch(T0, [SearchedArea(box(3.99, 59.99, 4.01, 60.01), 50.0)])
    plan = plan_search(
        [T0, T0 + timedelta(hours=1)],
        lon,
        lat,
        commence=T0 + timedelta(hours=1),
        units=[],
        searches=[searched],
    )
    assert plan.cumulative_pos_before == pytest.approx(0.5, abs=1e-6)
    # The particles that were elsewhere at the search's time now hold all the probability.
    assert plan.map.weights[: n // 2].sum() == pytest.approx(1.0, abs=1e-6)
