"""What every kind of forcing source provides: the `ForcingSource` base class.

A kind is one subclass: it says which catalog fields it needs (`check`), what it covers
(`coverage`), whether its data are synthetic, and how to cut it to a mission
(`subset`). The catalog and the subset writer only talk to this interface, so a new
kind touches no `if kind == ...` anywhere; it is listed once in `SOURCE_KINDS`.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import xarray as xr

from driftline.errors import ConfigurationError
from driftline.forcing.model import BBox, Coverage, SourceConfig


class ForcingSource(ABC):
    """One configured source of the catalog, of one kind.

    Built once when the catalog is read; `check` runs then, so a catalog that cannot
    work fails at start-up rather than on the first mission.
    """

    #: The catalog's `kind` string naming this class.
    kind: ClassVar[str]
    #: Made-up data (not a model or an observation): results then say synthetic_forcing.
    synthetic: ClassVar[bool] = False

    def __init__(self, config: SourceConfig, base_dir: Path | None = None) -> None:
        self.config = config
        self.base_dir = base_dir
        self.check()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config.name!r})"

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def location(self) -> str | None:
        """The config's `path`, relative ones resolved against the catalog's folder."""
        path = self.config.path
        if path is None:
            return None
        if "://" in path or os.path.isabs(path) or self.base_dir is None:
            return path
        return str(self.base_dir / path)

    def check(self) -> None:  # noqa: B027 - optional hook: most kinds need no extra fields
        """Raise ConfigurationError when the config lacks what this kind needs."""

    def invalid(self, problem: str) -> ConfigurationError:
        """A ConfigurationError naming this source, for `check`."""
        return ConfigurationError(f"forcing source {self.name}: {problem}")

    @abstractmethod
    def coverage(self) -> Coverage | None:
        """Area, time span and resolution; None when it covers everywhere, always.

        Raises ForcingUnavailable when the source cannot be reached: the catalog then
        skips it and names the reason if nothing else covers.
        """

    @abstractmethod
    def subset(self, variable: str, box: BBox, start: datetime, end: datetime) -> xr.Dataset:
        """`variable` over `box` and `start..end`, loaded in memory, with CF output names.

        The dataset uses `cf.OUTPUT_NAMES` and time/lat/lon coordinates (see
        `cf.label_output`). Implementations that read NetCDF hold `NETCDF_LOCK`: this
        runs in worker threads.
        """


class PathSource(ForcingSource):
    """A kind read from the config's `path` (a file, a glob or a URL), which it requires."""

    def check(self) -> None:
        if not self.config.path:
            raise self.invalid(f"{self.kind} needs a path")

    @property
    def resolved(self) -> str:
        """`location`, never None once `check` has passed."""
        location = self.location
        assert location is not None  # guaranteed by check()
        return location
