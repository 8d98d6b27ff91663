"""The plan's products: GeoJSON, KML, GPX (waypoints a unit loads), a PNG of the plan over
the probability map, and a plain-text briefing per unit in degrees and decimal minutes.

Pure functions from a `SearchPlan` to text or a PNG file; matplotlib's object API (not
pyplot) so several plans can be drawn in threads at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from matplotlib.figure import Figure
from shapely.geometry import mapping

from driftline.contracts.envelope import rfc3339
from driftline.planning.detection import KM_PER_NM
from driftline.planning.planner import SearchPlan, UnitPlan

UNIT_COLOURS = ("#d7191c", "#2c7bb6", "#1a9641", "#7b3294", "#e66101", "#008837")
LEVEL_COLOURS = {50: "#ff7f00", 90: "#984ea3"}


def degrees_minutes(value: float, *, latitude: bool) -> str:
    """60.2057 → 60°12.34'N; longitudes with three-digit degrees (004°03.21'E)."""
    hemisphere = ("N" if value >= 0 else "S") if latitude else ("E" if value >= 0 else "W")
    magnitude = abs(value)
    degrees = int(magnitude)
    minutes = round((magnitude - degrees) * 60, 2)
    if minutes >= 60:
        degrees, minutes = degrees + 1, 0.0
    width = 2 if latitude else 3
    return f"{degrees:0{width}d}°{minutes:05.2f}'{hemisphere}"


def position(lon: float, lat: float) -> str:
    return f"{degrees_minutes(lat, latitude=True)} {degrees_minutes(lon, latitude=False)}"


def unit_figures(unit: UnitPlan) -> dict[str, Any]:
    """The per-area figures, as they appear in the GeoJSON and the API."""
    return {
        "unit": unit.unit.name,
        "unit_type": unit.unit.unit_type.value,
        "pattern": unit.pattern.kind.value,
        "sweep_width_km": round(unit.unit.sweep.km, 3),
        "sweep_width_source": unit.unit.sweep.source,
        "track_spacing_km": round(unit.pattern.track_spacing_km, 3),
        "legs": unit.pattern.legs,
        "track_length_km": round(unit.pattern.track_length_km, 2),
        "area_km2": round(unit.area_km2, 3),
        "effort_km2": round(unit.effort_km2, 3),
        "coverage": round(unit.coverage, 4),
        "pod": round(unit.pod, 4),
        "poc": round(unit.poc, 4),
        "pos": round(unit.pos, 4),
        "heading_deg": round((90 - unit.rectangle.angle_deg) % 180, 1),
    }


def _ring(unit: UnitPlan) -> list[list[float]]:
    ring = [[round(lon, 6), round(lat, 6)] for lon, lat in unit.corners]
    return [*ring, ring[0]]


def plan_geojson(plan: SearchPlan) -> str:
    """Areas, tracks and waypoints per unit, and the containment on the updated weights."""
    features: list[dict[str, Any]] = []
    for unit in plan.units:
        figures = unit_figures(unit)
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [_ring(unit)]},
                "properties": {"kind": "search area", **figures},
            }
        )
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[round(w.lon, 6), round(w.lat, 6)] for w in unit.waypoints],
                },
                "properties": {"kind": "track", "unit": unit.unit.name},
            }
        )
        features += [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(w.lon, 6), round(w.lat, 6)]},
                "properties": {
                    "kind": "waypoint",
                    "unit": unit.unit.name,
                    "number": i + 1,
                    "time": rfc3339(w.time),
                },
            }
            for i, w in enumerate(unit.waypoints)
        ]
    for level, region in plan.map.containment.items():
        features.append(
            {
                "type": "Feature",
                "geometry": mapping(region),
                "properties": {"kind": "containment", "level": level, "weighted": True},
            }
        )
    collection = {
        "type": "FeatureCollection",
        "properties": {
            "commence": rfc3339(plan.commence),
            "pos": round(plan.pos, 4),
            "optimal_pos": round(plan.optimal_pos, 4),
            "cumulative_pos_before": round(plan.cumulative_pos_before, 4),
            "cumulative_pos_after": round(plan.cumulative_pos_after, 4),
        },
        "features": features,
    }
    return json.dumps(collection, indent=1)


def plan_kml(plan: SearchPlan, title: str) -> str:
    marks = []
    for i, unit in enumerate(plan.units):
        colour = _kml_colour(UNIT_COLOURS[i % len(UNIT_COLOURS)])
        ring = " ".join(f"{lon:.6f},{lat:.6f},0" for lon, lat in [*unit.corners, unit.corners[0]])
        track = " ".join(f"{w.lon:.6f},{w.lat:.6f},0" for w in unit.waypoints)
        figures = unit_figures(unit)
        description = escape(", ".join(f"{k}: {v}" for k, v in figures.items()))
        marks.append(
            f"<Placemark><name>{escape(unit.unit.name)} search area</name>"
            f"<description>{description}</description>"
            f"<Style><LineStyle><color>{colour}</color><width>3</width></LineStyle>"
            "<PolyStyle><fill>0</fill></PolyStyle></Style>"
            "<Polygon><outerBoundaryIs><LinearRing><coordinates>"
            f"{ring}</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>"
            f"<Placemark><name>{escape(unit.unit.name)} track</name>"
            f"<Style><LineStyle><color>{colour}</color><width>1</width></LineStyle></Style>"
            f"<LineString><coordinates>{track}</coordinates></LineString></Placemark>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">'
        f"<Document><name>{escape(title)}</name>{''.join(marks)}</Document></kml>\n"
    )


def _kml_colour(hex_rgb: str) -> str:
    r, g, b = hex_rgb[1:3], hex_rgb[3:5], hex_rgb[5:7]
    return f"ff{b}{g}{r}"


def plan_gpx(plan: SearchPlan) -> str:
    """One GPX 1.1 route per unit (its waypoints in order, with their times)."""
    routes = []
    for unit in plan.units:
        points = "".join(
            f'<rtept lat="{w.lat:.6f}" lon="{w.lon:.6f}"><time>{rfc3339(w.time)}</time>'
            f"<name>{escape(unit.unit.name)} WP{i + 1:02d}</name></rtept>"
            for i, w in enumerate(unit.waypoints)
        )
        routes.append(
            f"<rte><name>{escape(unit.unit.name)}</name>"
            f"<desc>{unit.pattern.kind.value}, track spacing "
            f"{unit.pattern.track_spacing_km / KM_PER_NM:.2f} NM</desc>{points}</rte>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<gpx version="1.1" creator="Driftline" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<metadata><time>{rfc3339(plan.commence)}</time></metadata>{''.join(routes)}</gpx>\n"
    )


def briefing(plan: SearchPlan, title: str) -> str:
    """The plain-text briefing: one block per unit, positions in degrees-minutes."""
    lines = [
        f"SEARCH PLAN - {title}",
        f"Commence search: {rfc3339(plan.commence)}",
        f"Probability of success of this plan: {plan.pos:.0%} "
        f"(optimal allocation bound {plan.optimal_pos:.0%})",
        f"Cumulative POS: {plan.cumulative_pos_before:.0%} before, "
        f"{plan.cumulative_pos_after:.0%} if this plan finds nothing",
        f"Searches already made and applied: {plan.searches_applied}",
        "",
    ]
    for unit in plan.units:
        spacing = unit.pattern.track_spacing_km
        first = unit.waypoints[0]
        lines += [
            f"UNIT {unit.unit.name} ({unit.unit.unit_type.value}, "
            f"{unit.unit.speed_kn:g} kn, {unit.unit.time_on_scene_h:g} h on scene)",
            f"  Pattern: {unit.pattern.kind.value.replace('_', ' ')}, {unit.pattern.legs} legs",
            f"  Track spacing: {spacing / KM_PER_NM:.2f} NM ({spacing:.2f} km); "
            f"sweep width {unit.unit.sweep.nm:.2f} NM",
            f"  Area: {unit.area_km2 / KM_PER_NM**2:.1f} NM² ({unit.area_km2:.1f} km²), corners:",
            *(
                f"    {chr(65 + i)}  {position(lon, lat)}"
                for i, (lon, lat) in enumerate(unit.corners)
            ),
            f"  First waypoint: {position(first.lon, first.lat)} at {rfc3339(first.time)}",
            f"  POC {unit.poc:.0%}  coverage {unit.coverage:.2f}  POD {unit.pod:.0%}  "
            f"POS {unit.pos:.0%}",
            "",
        ]
    for name in plan.unassigned:
        lines += [f"UNIT {name}: no area left to search (all probability already assigned)", ""]
    return "\n".join(lines)


def draw_plan(plan: SearchPlan, path: Path, *, title: str) -> None:
    """The plan over the probability map: particles shaded by weight, containment on
    the updated weights, one outlined area and track per unit."""
    fig = Figure(figsize=(9, 8), dpi=110)
    ax = fig.subplots()
    pmap = plan.map
    if pmap.lon.size:
        order = np.argsort(pmap.weights)
        ax.scatter(
            pmap.lon[order],
            pmap.lat[order],
            c=pmap.weights[order],
            s=4,
            cmap="Greys",
            linewidths=0,
            zorder=2,
        )
    for level, region in pmap.containment.items():
        parts = getattr(region, "geoms", [region])
        for part in parts:
            xs, ys = part.exterior.xy
            ax.plot(xs, ys, color=LEVEL_COLOURS.get(level, "black"), linewidth=1, linestyle="--")
    for i, unit in enumerate(plan.units):
        colour = UNIT_COLOURS[i % len(UNIT_COLOURS)]
        ring = [*unit.corners, unit.corners[0]]
        ax.plot([c[0] for c in ring], [c[1] for c in ring], color=colour, linewidth=2.5, zorder=4)
        ax.plot(
            [w.lon for w in unit.waypoints],
            [w.lat for w in unit.waypoints],
            color=colour,
            linewidth=0.8,
            zorder=3,
        )
        ax.annotate(
            f"{unit.unit.name}\nPOS {unit.pos:.0%}",
            (unit.waypoints[0].lon, unit.waypoints[0].lat),
            color=colour,
            fontsize=8,
            fontweight="bold",
            zorder=5,
        )
    mid_lat = float(np.mean(pmap.lat)) if pmap.lat.size else 0.0
    ax.set_aspect(1 / max(np.cos(np.radians(mid_lat)), 0.1))
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    ax.grid(True, linestyle=":", linewidth=0.5)
    ax.set_title(
        f"{title}\ncommence {rfc3339(plan.commence)}, plan POS {plan.pos:.0%}, "
        f"cumulative {plan.cumulative_pos_after:.0%}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path)


@dataclass(frozen=True)
class PlanProduct:
    """One product file of a plan: name under the plan's prefix, media type, writer."""

    name: str
    media_type: str
    write: Callable[[SearchPlan, Path, str], None]


def _text(render: Callable[[SearchPlan, str], str]) -> Callable[[SearchPlan, Path, str], None]:
    def write(plan: SearchPlan, path: Path, title: str) -> None:
        path.write_text(render(plan, title))

    return write


PLAN_PRODUCTS: tuple[PlanProduct, ...] = (
    PlanProduct("plan.geojson", "application/geo+json", _text(lambda p, _t: plan_geojson(p))),
    PlanProduct("plan.kml", "application/vnd.google-earth.kml+xml", _text(plan_kml)),
    PlanProduct("plan.gpx", "application/gpx+xml", _text(lambda p, _t: plan_gpx(p))),
    PlanProduct("plan.png", "image/png", lambda p, path, t: draw_plan(p, path, title=t)),
    PlanProduct("briefing.txt", "text/plain; charset=utf-8", _text(briefing)),
)
