"""The kinds of forcing source, and the registry mapping a catalog's `kind` to its class.

Adding a kind: write a `ForcingSource` subclass in its own module here and list it in
`SOURCE_KINDS`. Nothing else in Driftline branches on the kind.
"""

from __future__ import annotations

from pathlib import Path

from driftline.errors import ConfigurationError
from driftline.forcing.model import SourceConfig
from driftline.forcing.sources.base import ForcingSource
from driftline.forcing.sources.constant import ConstantSource
from driftline.forcing.sources.copernicus import CopernicusMarineSource
from driftline.forcing.sources.grib import GribSource
from driftline.forcing.sources.netcdf import NetcdfSource

#: Every kind the catalog file may name, by its `kind` string.
SOURCE_KINDS: dict[str, type[ForcingSource]] = {
    cls.kind: cls for cls in (NetcdfSource, GribSource, CopernicusMarineSource, ConstantSource)
}

__all__ = [
    "SOURCE_KINDS",
    "ConstantSource",
    "CopernicusMarineSource",
    "ForcingSource",
    "GribSource",
    "NetcdfSource",
    "build_source",
]


def build_source(config: SourceConfig, base_dir: Path | None = None) -> ForcingSource:
    """The source `config` describes, checked; an unknown kind → ConfigurationError."""
    cls = SOURCE_KINDS.get(config.kind)
    if cls is None:
        allowed = ", ".join(sorted(SOURCE_KINDS))
        raise ConfigurationError(
            f"forcing source {config.name}: unknown kind {config.kind!r} (allowed: {allowed})"
        )
    return cls(config, base_dir)
