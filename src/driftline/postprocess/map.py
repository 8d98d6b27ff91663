"""The PNG map a coordinator reads at a glance: coast, cloud, search areas, datum, scale.

The coastline is drawn offline from the same GSHHG landmask OpenDrift strands particles
on (roaring-landmask), so no map data is downloaded.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from shapely import MultiPolygon, Polygon

from driftline.landmask import landmask

if TYPE_CHECKING:
    from driftline.postprocess.products import Cloud

LEVEL_STYLE = {
    50: ("#d7191c", "50 % containment"),
    90: ("#fdae61", "90 % containment"),
    95: ("#2c7bb6", "95 % containment"),
}
KM_PER_DEG = 111.2


def _land(
    lon_min: float, lon_max: float, lat_min: float, lat_max: float, n: int = 300
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mask = landmask()
    lons = np.linspace(lon_min, lon_max, n)
    lats = np.linspace(lat_min, lat_max, n)
    xx, yy = np.meshgrid(lons, lats)
    land = mask.contains_many(xx.ravel(), yy.ravel()).reshape(xx.shape)
    return lons, lats, land.astype(float)


def _scale_bar(
    ax: plt.Axes, lon_min: float, lon_max: float, lat_min: float, lat_max: float
) -> None:
    mid_lat = (lat_min + lat_max) / 2
    width_km = (lon_max - lon_min) * KM_PER_DEG * math.cos(math.radians(mid_lat))
    nice = [1, 2, 5, 10, 20, 25, 50, 100, 200, 500]
    length = max([n for n in nice if n <= width_km / 4] or [1])
    dlon = length / (KM_PER_DEG * math.cos(math.radians(mid_lat)))
    x0 = lon_min + 0.05 * (lon_max - lon_min)
    y0 = lat_min + 0.05 * (lat_max - lat_min)
    ax.plot([x0, x0 + dlon], [y0, y0], color="black", linewidth=3, solid_capstyle="butt")
    ax.text(
        x0 + dlon / 2,
        y0 + 0.015 * (lat_max - lat_min),
        f"{length} km",
        ha="center",
        va="bottom",
        fontsize=9,
        fontweight="bold",
    )


def draw_map(
    cloud: Cloud,
    regions: dict[int, Polygon | MultiPolygon],
    centroids: list[tuple[float, float, datetime]],
    path: Path,
    *,
    title: str,
) -> None:
    final = len(cloud.times) - 1
    lon_f, lat_f = cloud.lon[:, final], cloud.lat[:, final]
    all_lon = np.concatenate(
        [cloud.lon[np.isfinite(cloud.lon)], cloud.stranded_lon, [cloud.start_lon]]
    )
    all_lat = np.concatenate(
        [cloud.lat[np.isfinite(cloud.lat)], cloud.stranded_lat, [cloud.start_lat]]
    )
    lon_min, lon_max = float(np.nanmin(all_lon)), float(np.nanmax(all_lon))
    lat_min, lat_max = float(np.nanmin(all_lat)), float(np.nanmax(all_lat))
    pad_lat = max((lat_max - lat_min) * 0.15, 0.02)
    mid_lat = (lat_min + lat_max) / 2
    pad_lon = max((lon_max - lon_min) * 0.15, pad_lat / max(math.cos(math.radians(mid_lat)), 0.1))
    lon_min, lon_max, lat_min, lat_max = (
        lon_min - pad_lon,
        lon_max + pad_lon,
        lat_min - pad_lat,
        lat_max + pad_lat,
    )

    fig, ax = plt.subplots(figsize=(9, 8), dpi=110)
    lons, lats, land = _land(lon_min, lon_max, lat_min, lat_max)
    ax.set_facecolor("#dceefc")
    if land.any():
        ax.contourf(lons, lats, land, levels=[0.5, 1.5], colors=["#e8e0c8"])
        ax.contour(lons, lats, land, levels=[0.5], colors=["#6b5b3e"], linewidths=0.8)
    ax.scatter(lon_f, lat_f, s=3, color="#333333", alpha=0.5, linewidths=0, zorder=3)
    if cloud.stranded_lon.size:
        ax.scatter(
            cloud.stranded_lon,
            cloud.stranded_lat,
            s=12,
            color="#8b0000",
            marker="x",
            linewidths=0.8,
            zorder=4,
        )
    for level in sorted(regions, reverse=True):
        colour, _ = LEVEL_STYLE.get(level, ("black", f"{level} %"))
        shape = regions[level]
        for polygon in shape.geoms if isinstance(shape, MultiPolygon) else [shape]:
            x, y = polygon.exterior.xy
            ax.plot(x, y, color=colour, linewidth=2, zorder=5)
    if len(centroids) > 1:
        ax.plot(
            [c[0] for c in centroids],
            [c[1] for c in centroids],
            color="#1a9641",
            linewidth=2,
            zorder=6,
        )
    if centroids:
        ax.plot(
            centroids[-1][0],
            centroids[-1][1],
            marker="o",
            markersize=9,
            color="#1a9641",
            markeredgecolor="white",
            zorder=7,
        )
    ax.plot(
        cloud.start_lon,
        cloud.start_lat,
        marker="*",
        markersize=16,
        color="#ffd700",
        markeredgecolor="black",
        zorder=8,
    )
    _scale_bar(ax, lon_min, lon_max, lat_min, lat_max)
    ax.set_xlim(lon_min, lon_max)
    ax.set_ylim(lat_min, lat_max)
    ax.set_aspect(1 / max(math.cos(math.radians(mid_lat)), 0.1))
    ax.set_xlabel("longitude (°E)")
    ax.set_ylabel("latitude (°N)")
    ax.grid(True, linestyle=":", linewidth=0.5)
    end = cloud.times[final].astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    ax.set_title(f"{title}\nsearch areas at {end}", fontsize=12)
    handles = [
        Line2D(
            [],
            [],
            marker="*",
            color="#ffd700",
            markeredgecolor="black",
            linestyle="",
            markersize=14,
            label="last known position",
        ),
        Line2D([], [], marker=".", color="#333333", linestyle="", label="particles (final)"),
        Line2D([], [], color="#1a9641", linewidth=2, marker="o", label="datum track / datum"),
        *[
            Patch(
                facecolor="none",
                edgecolor=LEVEL_STYLE[lvl][0],
                linewidth=2,
                label=LEVEL_STYLE[lvl][1],
            )
            for lvl in sorted(regions)
            if lvl in LEVEL_STYLE
        ],
    ]
    if cloud.stranded_lon.size:
        handles.append(
            Line2D(
                [],
                [],
                marker="x",
                color="#8b0000",
                linestyle="",
                label=f"stranded ({cloud.stranded_lon.size})",
            )
        )
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
