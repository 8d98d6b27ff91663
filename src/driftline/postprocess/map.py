"""The PNG map a coordinator reads at a glance: coast, cloud, search areas, datum, scale.

The coastline is drawn offline from the same GSHHG landmask OpenDrift strands particles
on (roaring-landmask), so no map data is downloaded. Figures are built with matplotlib's
object API, not pyplot: pyplot keeps global figure state that is not thread-safe, and
several missions draw their maps in worker threads at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from driftline.geo import KM_PER_DEG
from driftline.landmask import LandMask
from driftline.postprocess.cloud import Cloud, Datum
from driftline.postprocess.containment import Region, polygons

LEVEL_STYLE = {
    50: ("#d7191c", "50 % containment"),
    90: ("#fdae61", "90 % containment"),
    95: ("#2c7bb6", "95 % containment"),
}

DATUM_COLOUR = "#1a9641"
STRANDED_COLOUR = "#8b0000"
#: One colour per scenario (distinct from the containment and datum colours).
SCENARIO_COLOURS = ("#7b3294", "#c51b7d", "#8c510a", "#01665e", "#4d4d4d", "#542788")
#: The level a scenario's own area is outlined at (dashed, in its colour).
SCENARIO_LEVEL = 90


@dataclass(frozen=True)
class ScenarioLayer:
    """One scenario on the map: its particles, its own 90 % area and datum."""

    name: str
    weight: float
    cloud: Cloud
    regions: dict[int, Region]
    datums: list[Datum]


@dataclass(frozen=True)
class Extent:
    """The map's lon/lat window."""

    lon_min: float
    lon_max: float
    lat_min: float
    lat_max: float

    @property
    def cos_mid_lat(self) -> float:
        """Length of a degree of longitude over one of latitude (bounded near the poles)."""
        return max(math.cos(math.radians((self.lat_min + self.lat_max) / 2)), 0.1)


def draw_map(
    cloud: Cloud,
    regions: dict[int, Region],
    datums: list[Datum],
    path: Path,
    *,
    title: str,
    land: LandMask,
    scenarios: Sequence[ScenarioLayer] = (),
) -> None:
    """Draw the final-time map: `regions` by containment level, `datums` as the track.

    With scenarios, the weighted union's areas and datum are drawn as always, and each
    scenario's particles, 90 % area (dashed), datum and start in its own colour.
    """
    extent = map_extent(cloud)
    fig = Figure(figsize=(9, 8), dpi=110)
    ax = fig.subplots()
    _draw_land(ax, extent, land)
    if scenarios:
        _draw_scenarios(ax, scenarios)
    else:
        _draw_particles(ax, cloud)
    _draw_regions(ax, regions)
    _draw_datums(ax, datums)
    if not scenarios:  # each scenario has its own start; their mean is no place
        _draw_start(ax, cloud)
    _scale_bar(ax, extent)
    end = cloud.times[cloud.final].astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    _frame(ax, extent, f"{title}\nsearch areas at {end}")
    handles = _legend_handles(cloud, regions, several=bool(scenarios))
    handles += _scenario_handles(scenarios)
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)


def map_extent(cloud: Cloud) -> Extent:
    """Every afloat and stranded particle and the start, with a margin of 15 %."""
    all_lon = np.concatenate(
        [cloud.lon[np.isfinite(cloud.lon)], cloud.stranded_lon, [cloud.start_lon]]
    )
    all_lat = np.concatenate(
        [cloud.lat[np.isfinite(cloud.lat)], cloud.stranded_lat, [cloud.start_lat]]
    )
    lon_min, lon_max = float(np.nanmin(all_lon)), float(np.nanmax(all_lon))
    lat_min, lat_max = float(np.nanmin(all_lat)), float(np.nanmax(all_lat))
    pad_lat = max((lat_max - lat_min) * 0.15, 0.02)
    cos_lat = max(math.cos(math.radians((lat_min + lat_max) / 2)), 0.1)
    pad_lon = max((lon_max - lon_min) * 0.15, pad_lat / cos_lat)
    return Extent(lon_min - pad_lon, lon_max + pad_lon, lat_min - pad_lat, lat_max + pad_lat)


def _land(
    extent: Extent, mask: LandMask, n: int = 300
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Land (1) and sea (0) sampled on an n-by-n lon/lat grid over the extent."""
    lons = np.linspace(extent.lon_min, extent.lon_max, n)
    lats = np.linspace(extent.lat_min, extent.lat_max, n)
    xx, yy = np.meshgrid(lons, lats)
    land = mask.contains_many(xx.ravel(), yy.ravel()).reshape(xx.shape)
    return lons, lats, land.astype(float)


def _draw_land(ax: Axes, extent: Extent, mask: LandMask) -> None:
    lons, lats, land = _land(extent, mask)
    ax.set_facecolor("#dceefc")
    if land.any():
        ax.contourf(lons, lats, land, levels=[0.5, 1.5], colors=["#e8e0c8"])
        ax.contour(lons, lats, land, levels=[0.5], colors=["#6b5b3e"], linewidths=0.8)


#: Most particles drawn per layer: beyond this the cloud looks the same and only the
#: drawing time grows (a 200,000-particle mission drew for seconds).
MAX_DRAWN = 20_000


def _thin(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An evenly strided subset of at most `MAX_DRAWN` positions."""
    step = max(1, -(-lon.size // MAX_DRAWN))
    return lon[::step], lat[::step]


def _draw_particles(ax: Axes, cloud: Cloud) -> None:
    """Final positions of the afloat particles, and where the stranded ones ended."""
    lon_f, lat_f = _thin(cloud.lon[:, cloud.final], cloud.lat[:, cloud.final])
    ax.scatter(lon_f, lat_f, s=3, color="#333333", alpha=0.5, linewidths=0, zorder=3)
    if cloud.stranded_lon.size:
        ax.scatter(
            *_thin(cloud.stranded_lon, cloud.stranded_lat),
            s=12,
            color=STRANDED_COLOUR,
            marker="x",
            linewidths=0.8,
            zorder=4,
        )


def _scenario_colour(index: int) -> str:
    return SCENARIO_COLOURS[index % len(SCENARIO_COLOURS)]


def _draw_scenarios(ax: Axes, scenarios: Sequence[ScenarioLayer]) -> None:
    """Each scenario's final particles, its own 90 % area (dashed) and datum."""
    for index, layer in enumerate(scenarios):
        colour = _scenario_colour(index)
        final = layer.cloud.final
        ax.scatter(
            *_thin(layer.cloud.lon[:, final], layer.cloud.lat[:, final]),
            s=3,
            color=colour,
            alpha=0.5,
            linewidths=0,
            zorder=3,
        )
        if layer.cloud.stranded_lon.size:
            ax.scatter(
                *_thin(layer.cloud.stranded_lon, layer.cloud.stranded_lat),
                s=12,
                color=STRANDED_COLOUR,
                marker="x",
                linewidths=0.8,
                zorder=4,
            )
        region = layer.regions.get(SCENARIO_LEVEL)
        for polygon in polygons(region) if region is not None else []:
            x, y = polygon.exterior.xy
            ax.plot(x, y, color=colour, linewidth=1.5, linestyle="--", zorder=5)
        if layer.datums:
            end = layer.datums[-1]
            ax.plot(
                end.lon,
                end.lat,
                marker="D",
                markersize=7,
                color=colour,
                zorder=7,
                markeredgecolor="white",
            )
        ax.plot(
            layer.cloud.start_lon,
            layer.cloud.start_lat,
            marker="*",
            markersize=11,
            color=colour,
            markeredgecolor="black",
            zorder=8,
        )


def _scenario_handles(scenarios: Sequence[ScenarioLayer]) -> list[Artist]:
    return [
        Line2D(
            [],
            [],
            color=_scenario_colour(index),
            linestyle="--",
            marker="D",
            label=f"{layer.name} ({layer.weight:.0%}): particles, {SCENARIO_LEVEL} %, datum",
        )
        for index, layer in enumerate(scenarios)
    ]


def _draw_regions(ax: Axes, regions: dict[int, Region]) -> None:
    # Widest first, so the tighter outlines are drawn on top of the wider ones.
    for level in sorted(regions, reverse=True):
        colour, _ = LEVEL_STYLE.get(level, ("black", f"{level} %"))
        for polygon in polygons(regions[level]):
            x, y = polygon.exterior.xy
            ax.plot(x, y, color=colour, linewidth=2, zorder=5)


def _draw_datums(ax: Axes, datums: list[Datum]) -> None:
    """The datum track as a line, the final datum as a dot."""
    if len(datums) > 1:
        ax.plot(
            [d.lon for d in datums],
            [d.lat for d in datums],
            color=DATUM_COLOUR,
            linewidth=2,
            zorder=6,
        )
    if datums:
        ax.plot(
            datums[-1].lon,
            datums[-1].lat,
            marker="o",
            markersize=9,
            color=DATUM_COLOUR,
            markeredgecolor="white",
            zorder=7,
        )


def _draw_start(ax: Axes, cloud: Cloud) -> None:
    ax.plot(
        cloud.start_lon,
        cloud.start_lat,
        marker="*",
        markersize=16,
        color="#ffd700",
        markeredgecolor="black",
        zorder=8,
    )


def _scale_bar(ax: Axes, extent: Extent) -> None:
    """A round-length bar about a quarter of the map wide, bottom left."""
    width_deg = extent.lon_max - extent.lon_min
    height_deg = extent.lat_max - extent.lat_min
    cos_lat = math.cos(math.radians((extent.lat_min + extent.lat_max) / 2))
    nice = [1, 2, 5, 10, 20, 25, 50, 100, 200, 500]
    length = max([n for n in nice if n <= width_deg * KM_PER_DEG * cos_lat / 4] or [1])
    dlon = length / (KM_PER_DEG * cos_lat)
    x0 = extent.lon_min + 0.05 * width_deg
    y0 = extent.lat_min + 0.05 * height_deg
    ax.plot([x0, x0 + dlon], [y0, y0], color="black", linewidth=3, solid_capstyle="butt")
    ax.text(
        x0 + dlon / 2,
        y0 + 0.015 * height_deg,
        f"{length} km",
        ha="center",
        va="bottom",
        fontsize=9,
        fontweight="bold",
    )


def _frame(ax: Axes, extent: Extent, title: str) -> None:
    """Limits, equal-distance aspect, axis labels, graticule and title."""
    ax.set_xlim(extent.lon_min, extent.lon_max)
    ax.set_ylim(extent.lat_min, extent.lat_max)
    ax.set_aspect(1 / extent.cos_mid_lat)
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    ax.grid(True, linestyle=":", linewidth=0.5)
    ax.set_title(title, fontsize=12)


def _legend_handles(
    cloud: Cloud, regions: dict[int, Region], *, several: bool = False
) -> list[Artist]:
    start = "scenario start (in its colour)" if several else "last known position"
    handles: list[Artist] = [
        Line2D(
            [],
            [],
            marker="*",
            color="#ffd700" if not several else "white",
            markeredgecolor="black",
            linestyle="",
            markersize=14,
            label=start,
        ),
    ]
    if not several:
        handles.append(
            Line2D([], [], marker=".", color="#333333", linestyle="", label="particles (final)")
        )
    datum = "datum track / datum" + (" (all scenarios)" if several else "")
    handles += [Line2D([], [], color=DATUM_COLOUR, linewidth=2, marker="o", label=datum)]
    handles += [
        Patch(facecolor="none", edgecolor=colour, linewidth=2, label=label)
        for colour, label in (LEVEL_STYLE[lvl] for lvl in sorted(regions) if lvl in LEVEL_STYLE)
    ]
    if cloud.stranded_lon.size:
        stranded = f"stranded ({cloud.stranded_lon.size})"
        handles.append(
            Line2D([], [], marker="x", color=STRANDED_COLOUR, linestyle="", label=stranded)
        )
    return handles
