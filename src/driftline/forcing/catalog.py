"""The forcing catalog: which sources exist, what they cover, and which one a mission uses.

A catalog is a JSON file named by `DRIFTLINE_FORCING_CATALOG` (see docs/science.md):

```json
{"sources": [
  {"name": "norkyst-current", "kind": "netcdf", "path": "/data/norkyst_*.nc",
   "variables": ["current"], "priority": 20},
  {"name": "sample-wind", "kind": "netcdf", "path": "wind.nc", "variables": ["wind"]},
  {"name": "cmems-global", "kind": "copernicusmarine",
   "dataset_id": "cmems_mod_glo_phy_anfc_0.083deg_PT1H-m", "variables": ["current"]},
  {"name": "calm", "kind": "constant", "variables": ["wind"], "values": {"wind": [0, 0]},
   "synthetic_allowed": true, "priority": -10}
]}
```

Variables are found by CF `standard_name`; `variable_map` names them in files that lack
one. Coverage (area, time span, resolution) is read once per file and cached.

When the preferred source does not cover the whole area or window, the choice is an
ordered stack (finest first, coarser fallbacks after) that OpenDrift consults in turn,
as its own reader priority does; see `Catalog.choose`.

This module owns reading the file and the choice between sources; what each `kind`
means lives in `driftline.forcing.sources` (one class per kind, listed in
`SOURCE_KINDS`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from driftline.errors import ConfigurationError, ForcingGap, ForcingUnavailable
from driftline.forcing.model import BBox, Coverage, SourceConfig
from driftline.forcing.sources import ForcingSource, build_source
from driftline.settings import Settings

# BBox, Coverage and SourceConfig were defined here first; importers may keep using this path.
__all__ = ["BBox", "Catalog", "ChosenSource", "Coverage", "SourceConfig"]


@dataclass(frozen=True)
class ChosenSource:
    """A source picked for one variable, with what it covers."""

    variable: str
    source: ForcingSource
    coverage: Coverage | None  # None for sources that cover everything (constant)

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def config(self) -> SourceConfig:
        return self.source.config

    @property
    def location(self) -> str | None:
        """Resolved path/URL for file-backed sources, else None."""
        return self.source.location

    @property
    def synthetic(self) -> bool:
        return self.source.synthetic


class Catalog:
    """The configured sources and the rule that picks one per variable."""

    def __init__(self, sources: list[SourceConfig], base_dir: Path | None = None) -> None:
        names = [s.name for s in sources]
        if len(names) != len(set(names)):
            raise ConfigurationError("forcing catalog: source names must be unique")
        # Built (and so checked) now: a catalog that cannot work fails at start-up.
        self.sources: list[ForcingSource] = [build_source(s, base_dir) for s in sources]
        self.base_dir = base_dir

    @classmethod
    def from_file(cls, path: Path) -> Catalog:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read forcing catalog {path}: {exc}") from exc
        sources = [_entry(path, i, entry) for i, entry in enumerate(raw.get("sources", []))]
        return cls(sources, base_dir=path.parent)

    @classmethod
    def from_settings(cls, settings: Settings) -> Catalog:
        if settings.forcing_catalog is None:
            raise ConfigurationError(
                "no forcing catalog configured: set DRIFTLINE_FORCING_CATALOG (see "
                "docs/science.md; `driftline forcing sample` makes sample data)"
            )
        return cls.from_file(settings.forcing_catalog)

    def choose(
        self,
        need: set[str],
        area: BBox,
        start: datetime,
        end: datetime,
        preferred: dict[str, str | None] | None = None,
        reach: BBox | None = None,
    ) -> dict[str, list[ChosenSource]]:
        """Per variable, the ordered sources OpenDrift should consult (preferred first).

        `area` is where particles start, `reach` where they can drift to (defaults to
        `area`). The stack holds, best first (highest priority, then finest grid), every
        source that covers part of `reach` during the window, up to the first one that
        covers all of it: OpenDrift asks each in turn for the particles the ones before
        could not serve. Raises ForcingGap, naming each source and why, when the stack
        leaves the seed area uncovered at some time of the window.
        """
        wanted = preferred or {}
        return {
            variable: self._stack(variable, area, reach or area, start, end, wanted.get(variable))
            for variable in sorted(need)
        }

    def _candidates(self, variable: str, wanted: str | None) -> list[ForcingSource]:
        """Sources offering `variable`; only the one named `wanted` if the mission names one."""
        candidates = [
            s
            for s in self.sources
            if variable in s.config.variables and (wanted is None or s.name == wanted)
        ]
        if wanted and not candidates:
            raise ForcingGap(f"no {variable} source named {wanted!r} in the forcing catalog")
        return candidates

    def _stack(
        self,
        variable: str,
        area: BBox,
        reach: BBox,
        start: datetime,
        end: datetime,
        wanted: str | None,
    ) -> list[ChosenSource]:
        reasons: list[str] = []
        usable: list[ChosenSource] = []
        for source in self._candidates(variable, wanted):
            try:
                cov = source.coverage()
            except ForcingUnavailable as exc:
                reasons.append(str(exc))
                continue
            gap = _gap(cov, area, start, end)
            if gap:
                reasons.append(f"{variable} source '{source.name}' {gap}")
            if _overlaps(cov, reach, start, end):
                usable.append(ChosenSource(variable, source, cov))
        stack: list[ChosenSource] = []
        for chosen in sorted(usable, key=_rank):  # sorted is stable: catalog order among equals
            stack.append(chosen)
            if _covers(chosen.coverage, reach, start, end):
                break  # nothing after it would ever be asked
        uncovered = _uncovered(stack, area, start, end)
        if uncovered is not None:
            detail = "; ".join(reasons) or f"no source in the catalog provides {variable}"
            raise ForcingGap(
                f"No {variable} forcing covers this mission "
                f"({_fmt(start)} to {_fmt(end)}): {detail}; nothing covers the start area "
                f"from {_fmt(uncovered)}."
            )
        return stack


def _overlaps(cov: Coverage | None, reach: BBox, start: datetime, end: datetime) -> bool:
    """Whether `cov` holds any of `reach` during `start..end`."""
    if cov is None:
        return True
    area = cov.area
    in_space = (
        area.lon_min <= reach.lon_max
        and area.lon_max >= reach.lon_min
        and area.lat_min <= reach.lat_max
        and area.lat_max >= reach.lat_min
    )  # not BBox.intersection: a point seed area (radius 0) must still overlap
    return in_space and cov.start <= end and cov.end >= start


def _covers(cov: Coverage | None, box: BBox, start: datetime, end: datetime) -> bool:
    return _gap(cov, box, start, end) is None


def _uncovered(
    stack: list[ChosenSource], area: BBox, start: datetime, end: datetime
) -> datetime | None:
    """The first moment of `start..end` when no source of `stack` covers all of `area`."""
    spans = sorted(
        (c.coverage.start, c.coverage.end) if c.coverage else (start, end)
        for c in stack
        if c.coverage is None or _contains(c.coverage.area, area)
    )
    reached = start
    for span_start, span_end in spans:
        if span_start > reached:
            return reached
        reached = max(reached, span_end)
        if reached >= end:
            return None
    return reached if reached < end else None


def _contains(outer: BBox, inner: BBox) -> bool:
    return outer.contains(inner.lon_min, inner.lat_min) and outer.contains(
        inner.lon_max, inner.lat_max
    )


def _entry(path: Path, index: int, entry: object) -> SourceConfig:
    """One `sources` entry as config; malformed → ConfigurationError, like the rest of the file."""
    try:
        return SourceConfig.model_validate(entry)
    except ValidationError as exc:
        raise ConfigurationError(f"forcing catalog {path}, source #{index}: {exc}") from exc


def _rank(chosen: ChosenSource) -> tuple[int, float]:
    """Sort key: highest priority first, then finest grid (uniform sources last)."""
    resolution = chosen.coverage.resolution_deg if chosen.coverage else float("inf")
    return -chosen.config.priority, resolution


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _gap(cov: Coverage | None, area: BBox, start: datetime, end: datetime) -> str | None:
    """Why `cov` does not serve the mission, in words, or None if it does."""
    if cov is None:
        return None
    if start < cov.start:
        return f"starts {_fmt(cov.start)} but the mission needs from {_fmt(start)}"
    if end > cov.end:
        return f"ends {_fmt(cov.end)} but the mission needs until {_fmt(end)}"
    if not _contains(cov.area, area):
        return (
            f"covers lon {cov.area.lon_min:.2f}..{cov.area.lon_max:.2f}, lat "
            f"{cov.area.lat_min:.2f}..{cov.area.lat_max:.2f}, not the seed area"
        )
    return None
