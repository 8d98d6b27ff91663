"""OpenDrift readers for a simulation's forcing layers, each counting what it served.

A variable may have several layers (preferred source first, fallbacks after). They are
added to OpenDrift in that order, so its own reader priority does the composing: at
every time step it asks the first reader, then hands the particles that reader could
not serve (outside its area, past its end, or masked) to the next. Each reader counts
the particle-steps for which it returned a value, which is what `summary.forcing`
reports as each source's share.

Imports OpenDrift: only the simulation pool's processes import this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from opendrift.readers import reader_netCDF_CF_generic

from driftline.forcing.cf import OUTPUT_NAMES

#: OpenDrift's variable name (CF standard name) → Driftline's variable.
_VARIABLE_OF = {name: variable for variable, pair in OUTPUT_NAMES.items() for name in pair}


class CountingReader(reader_netCDF_CF_generic.Reader):
    """OpenDrift's generic CF reader over one subset, counting the particle-steps it served."""

    def __init__(self, path: Path, *, source: str, name: str) -> None:
        super().__init__(str(path), name=name)
        self.source = source
        self.served: dict[str, int] = {}

    def get_variables_interpolated(
        self, variables: Sequence[str], *args: Any, **kwargs: Any
    ) -> tuple[Any, Any]:
        env, profiles = super().get_variables_interpolated(variables, *args, **kwargs)
        requested = len(kwargs["lon"]) if kwargs.get("lon") is not None else None
        for variable in {_VARIABLE_OF[v] for v in variables if v in _VARIABLE_OF}:
            east = OUTPUT_NAMES[variable][0]
            values = np.ma.masked_invalid(np.ma.asarray(env[east])[:requested])
            self.served[variable] = self.served.get(variable, 0) + int(values.count())
        return env, profiles


def forcing_readers(paths: Sequence[Path], sources: Sequence[str]) -> list[CountingReader]:
    """One reader per subset, in the given (priority) order; `sources` names each one.

    Without names (older requests), a reader is named after its file.
    """
    names = list(sources) if len(sources) == len(paths) else [p.stem for p in paths]
    return [
        CountingReader(path, source=source, name=f"{index}-{source}")
        for index, (path, source) in enumerate(zip(paths, names, strict=True))
    ]


def particle_steps_served(readers: Sequence[CountingReader]) -> dict[str, dict[str, int]]:
    """Per variable, per source: the particle-steps it served during the run."""
    usage: dict[str, dict[str, int]] = {}
    for reader in readers:
        for variable, count in reader.served.items():
            by_source = usage.setdefault(variable, {})
            by_source[reader.source] = by_source.get(reader.source, 0) + count
    return usage
