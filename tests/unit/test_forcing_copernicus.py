"""The `copernicusmarine` kind, up to the call into the service.

The service cannot be reached from here, so `open_dataset` is a purpose-built stand-in
that records each request and answers with a dataset shaped like the service's (CMEMS
names, a depth axis, `latitude`/`longitude`). The requests are also bound against the
real `copernicusmarine.open_dataset` signature, so a renamed argument fails here.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import requests
import xarray as xr

from driftline.errors import ForcingUnavailable
from driftline.forcing.model import BBox, SourceConfig
from driftline.forcing.sources.copernicus import CopernicusMarineSource

START = datetime(2024, 1, 1, tzinfo=UTC)
CREDENTIALS = {
    "COPERNICUSMARINE_SERVICE_USERNAME": "jrcc",
    "COPERNICUSMARINE_SERVICE_PASSWORD": "s3cret",
}
DATASET = "cmems_mod_glo_phy-cur_anfc_0.083deg_PT6H-i"


def _cmems_like() -> xr.Dataset:
    """Surface currents as the service names them: uo/vo on (time, depth, latitude, longitude)."""
    times = np.array(
        [np.datetime64("2024-01-01T00:00", "ns") + np.timedelta64(6 * h, "h") for h in range(9)]
    )
    depth = np.array([0.494, 1.541])
    lats = np.arange(55.0, 65.001, 1 / 12)
    lons = np.arange(-5.0, 10.001, 1 / 12)
    shape = (len(times), len(depth), len(lats), len(lons))
    east = np.full(shape, 0.3, "float32")
    east[:, 1] = -9.0  # a deeper level that must never be used
    north = np.broadcast_to(lats[None, None, :, None], shape).astype("float32") / 100
    dims = ("time", "depth", "latitude", "longitude")
    return xr.Dataset(
        {
            "uo": (dims, east, {"standard_name": "eastward_sea_water_velocity"}),
            "vo": (dims, north, {"standard_name": "northward_sea_water_velocity"}),
        },
        coords={
            "time": ("time", times, {"standard_name": "time"}),
            "depth": ("depth", depth, {"standard_name": "depth"}),
            "latitude": ("latitude", lats, {"standard_name": "latitude"}),
            "longitude": ("longitude", lons, {"standard_name": "longitude"}),
        },
    )


class RecordingService:
    """Stands in for `copernicusmarine.open_dataset`: records requests, subsets like it."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.failure = failure

    def __call__(self, **request: Any) -> xr.Dataset:
        self.requests.append(request)
        if self.failure is not None:
            raise self.failure
        ds = _cmems_like()
        if "minimum_longitude" in request:
            ds = ds.sel(
                longitude=slice(
                    request["minimum_longitude"] - 0.1, request["maximum_longitude"] + 0.1
                ),
                latitude=slice(
                    request["minimum_latitude"] - 0.1, request["maximum_latitude"] + 0.1
                ),
            )
        if "start_datetime" in request:
            lo = np.datetime64(
                request["start_datetime"].replace(tzinfo=None), "ns"
            ) - np.timedelta64(6, "h")
            hi = np.datetime64(request["end_datetime"].replace(tzinfo=None), "ns") + np.timedelta64(
                6, "h"
            )
            ds = ds.sel(time=slice(lo, hi))
        return ds


def _source(
    service: RecordingService, environ: dict[str, str] | None = None, **extra: Any
) -> CopernicusMarineSource:
    config = SourceConfig.model_validate(
        {
            "name": "cmems",
            "kind": "copernicusmarine",
            "dataset_id": DATASET,
            "variables": ["current"],
        }
        | extra
    )
    return CopernicusMarineSource(
        config, open_dataset=service, environ=CREDENTIALS if environ is None else environ
    )


def _bind_to_the_real_api(request: dict[str, Any]) -> None:
    import copernicusmarine

    inspect.signature(copernicusmarine.open_dataset).bind(**request)


def test_coverage_opens_the_whole_dataset_lazily_with_the_environment_credentials() -> None:
    service = RecordingService()
    cov = _source(service).coverage()
    assert (cov.area.lon_min, cov.area.lat_min) == pytest.approx((-5.0, 55.0))
    assert (cov.start, cov.end) == (START, START + timedelta(hours=48))
    assert cov.resolution_deg == pytest.approx(1 / 12)
    [request] = service.requests
    assert request == {
        "dataset_id": DATASET,
        "username": "jrcc",
        "password": "s3cret",
        "minimum_depth": 0.0,
        "maximum_depth": 1.0,
    }
    _bind_to_the_real_api(request)


def test_subset_asks_for_the_box_window_and_surface_and_cuts_the_surface_level() -> None:
    service = RecordingService()
    box = BBox(3.0, 59.0, 5.0, 61.0)
    start, end = START + timedelta(hours=6), START + timedelta(hours=18)
    cut = _source(service).subset("current", box, start, end)
    [request] = service.requests
    assert request == {
        "dataset_id": DATASET,
        "username": "jrcc",
        "password": "s3cret",
        "minimum_longitude": 3.0,
        "maximum_longitude": 5.0,
        "minimum_latitude": 59.0,
        "maximum_latitude": 61.0,
        "coordinates_selection_method": "outside",
        "start_datetime": start,
        "end_datetime": end,
        "minimum_depth": 0.0,
        "maximum_depth": 1.0,
    }
    _bind_to_the_real_api(request)
    assert set(cut.data_vars) == {"x_sea_water_velocity", "y_sea_water_velocity"}
    assert "depth" not in cut.dims
    np.testing.assert_allclose(cut["x_sea_water_velocity"], 0.3)  # the surface, not -9
    np.testing.assert_allclose(
        cut["y_sea_water_velocity"].values[0, :, 0], cut["lat"] / 100, rtol=1e-6
    )
    assert cut["time"].values[0] <= np.datetime64("2024-01-01T06:00", "ns")
    assert cut["time"].values[-1] >= np.datetime64("2024-01-01T18:00", "ns")


def test_variable_map_names_the_variables_to_request() -> None:
    service = RecordingService()
    _source(service, variable_map={"current": ["uo", "vo"]}).subset(
        "current", BBox(3.0, 59.0, 5.0, 61.0), START, START + timedelta(hours=6)
    )
    assert service.requests[0]["variables"] == ["uo", "vo"]
    _bind_to_the_real_api(service.requests[0])


@pytest.mark.parametrize(
    "environ",
    [{}, {"COPERNICUSMARINE_SERVICE_USERNAME": "jrcc"}, {"COPERNICUSMARINE_SERVICE_PASSWORD": "x"}],
)
def test_missing_credentials_fail_in_one_sentence_before_any_call(environ: dict[str, str]) -> None:
    service = RecordingService()
    with pytest.raises(ForcingUnavailable) as info:
        _source(service, environ).coverage()
    assert str(info.value) == (
        "source cmems: Copernicus Marine needs credentials: set "
        "COPERNICUSMARINE_SERVICE_USERNAME and COPERNICUSMARINE_SERVICE_PASSWORD in the "
        "workers' environment"
    )
    assert service.requests == [], "never called: the package would prompt on stdin"


def test_no_network_is_a_sentence_naming_the_dataset() -> None:
    from copernicusmarine import CouldNotConnectToAuthenticationSystem

    for failure in (
        requests.exceptions.ConnectionError("Name or service not known"),
        CouldNotConnectToAuthenticationSystem("auth unreachable"),
    ):
        with pytest.raises(ForcingUnavailable) as info:
            _source(RecordingService(failure)).coverage()
        message = str(info.value)
        assert message.startswith(
            f"source cmems: Copernicus Marine could not be reached for dataset {DATASET} "
            "(network or service down: "
        )
        assert type(failure).__name__ in message


def test_rejected_credentials_are_named_as_such() -> None:
    from copernicusmarine import InvalidUsernameOrPassword

    with pytest.raises(ForcingUnavailable, match="refused the credentials"):
        _source(RecordingService(InvalidUsernameOrPassword("no"))).subset(
            "current", BBox(3.0, 59.0, 5.0, 61.0), START, START
        )


def test_coverage_is_asked_once_per_hour_not_per_mission() -> None:
    service = RecordingService()
    source = _source(service)
    assert source.coverage() == source.coverage()
    assert len(service.requests) == 1
