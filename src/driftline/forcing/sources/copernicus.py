"""The `copernicusmarine` kind: a Copernicus Marine Service dataset, opened by its id.

Read through the `copernicusmarine` package's `open_dataset`, which opens the service's
ARCO (Zarr) store lazily and subsets on the server's chunks: only the mission's box,
window and the surface level are transferred. Credentials come from the environment
(`COPERNICUSMARINE_SERVICE_USERNAME` / `COPERNICUSMARINE_SERVICE_PASSWORD`) and are passed
explicitly, because the package would otherwise prompt on standard input, which a worker
does not have. Without them, or without a network, the source reports itself unavailable
in one sentence: the catalog then falls back to other sources, or the mission fails with
`forcing_gap` quoting that sentence.

The service cannot be reached from the test machines: tests pass a purpose-built
`open_dataset` and check everything up to the call (see docs/science.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import xarray as xr

from driftline.errors import ForcingUnavailable
from driftline.forcing.gridded import at_surface, coverage_of, cut
from driftline.forcing.model import BBox, Coverage, SourceConfig
from driftline.forcing.sources.base import ForcingSource

#: The environment variables the copernicusmarine package itself reads.
USERNAME_VARIABLE = "COPERNICUSMARINE_SERVICE_USERNAME"
PASSWORD_VARIABLE = "COPERNICUSMARINE_SERVICE_PASSWORD"
#: Coverage is asked of the service at most this often per process (forecasts grow daily).
COVERAGE_TTL_S = 3600.0
#: Surface layer: the first model level (0.49 m in the global physics analysis).
SURFACE_DEPTH_M = (0.0, 1.0)

#: `copernicusmarine.open_dataset`'s shape: keyword arguments in, a lazy dataset out.
OpenDataset = Callable[..., xr.Dataset]


def _package_open_dataset(**request: Any) -> xr.Dataset:
    import copernicusmarine  # optional at import: loads pandas, boto3 and friends

    return copernicusmarine.open_dataset(**request)


class CopernicusMarineSource(ForcingSource):
    """A CMEMS dataset id, opened lazily and subset through the copernicusmarine package."""

    kind = "copernicusmarine"

    def __init__(
        self,
        config: SourceConfig,
        base_dir: Path | None = None,
        *,
        open_dataset: OpenDataset | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(config, base_dir)
        self._open_dataset = open_dataset or _package_open_dataset
        self._environ = environ if environ is not None else os.environ
        self._coverage: tuple[float, Coverage] | None = None

    def check(self) -> None:
        if not self.config.dataset_id:
            raise self.invalid("needs dataset_id")

    def credentials(self) -> tuple[str, str]:
        """(username, password) from the environment; ForcingUnavailable when either is unset."""
        username = self._environ.get(USERNAME_VARIABLE, "")
        password = self._environ.get(PASSWORD_VARIABLE, "")
        if not (username and password):
            raise ForcingUnavailable(
                f"source {self.name}: Copernicus Marine needs credentials: set "
                f"{USERNAME_VARIABLE} and {PASSWORD_VARIABLE} in the workers' environment"
            )
        return username, password

    def request(
        self,
        variable: str | None,
        box: BBox | None = None,
        window: tuple[datetime, datetime] | None = None,
    ) -> dict[str, Any]:
        """The keyword arguments of `open_dataset` for `variable` over `box` and `window`.

        Without a box and window: the whole dataset, lazily (its coordinates give coverage).
        """
        username, password = self.credentials()
        request: dict[str, Any] = {
            "dataset_id": self.config.dataset_id,
            "username": username,
            "password": password,
        }
        if variable is not None and variable in self.config.variable_map:
            request["variables"] = list(self.config.variable_map[variable])
        if box is not None:
            request |= {
                "minimum_longitude": box.lon_min,
                "maximum_longitude": box.lon_max,
                "minimum_latitude": box.lat_min,
                "maximum_latitude": box.lat_max,
                # Grid points just outside the box too, so interpolation reaches its edges.
                "coordinates_selection_method": "outside",
            }
        if window is not None:
            request |= {"start_datetime": window[0], "end_datetime": window[1]}
        if variable in ("current", "stokes"):
            request |= {"minimum_depth": SURFACE_DEPTH_M[0], "maximum_depth": SURFACE_DEPTH_M[1]}
        return request

    def open(self, request: dict[str, Any]) -> xr.Dataset:
        """Call the package; its failures become ForcingUnavailable sentences."""
        try:
            return self._open_dataset(**request)
        except (ForcingUnavailable, TypeError, AttributeError):
            raise  # ours already, or a bug in the call: not the service's fault
        except Exception as exc:  # the package raises its own tree, requests' and botocore's
            raise ForcingUnavailable(self._explain(exc)) from exc

    def coverage(self) -> Coverage:
        now = time.monotonic()
        if self._coverage is not None and now - self._coverage[0] < COVERAGE_TTL_S:
            return self._coverage[1]
        ds = self.open(self.request(self.config.variables[0]))
        try:
            found = coverage_of(at_surface(ds))
        finally:
            ds.close()
        self._coverage = (now, found)
        return found

    def subset(self, variable: str, box: BBox, start: datetime, end: datetime) -> xr.Dataset:
        ds = self.open(self.request(variable, box, (start, end)))
        try:
            return cut(
                ds,
                source=self.name,
                variable=variable,
                variable_map=self.config.variable_map,
                box=box,
                start=start,
                end=end,
            )
        except (OSError, RuntimeError) as exc:
            raise ForcingUnavailable(self._explain(exc)) from exc
        finally:
            ds.close()

    def _explain(self, exc: BaseException) -> str:
        kind = type(exc).__name__
        if kind in {"InvalidUsernameOrPassword", "CredentialsCannotBeNone"}:
            return (
                f"source {self.name}: Copernicus Marine refused the credentials in "
                f"{USERNAME_VARIABLE}/{PASSWORD_VARIABLE} ({kind})"
            )
        return (
            f"source {self.name}: Copernicus Marine could not be reached for dataset "
            f"{self.config.dataset_id} (network or service down: {kind}: {exc})"
        )
