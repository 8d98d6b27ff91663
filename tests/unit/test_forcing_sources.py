"""The source-kind registry: one class per catalog `kind`, each checking its own fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from driftline.contracts.missions import MissionCreate
from driftline.errors import ConfigurationError, ForcingGap
from driftline.forcing.catalog import Catalog
from driftline.forcing.cf import OUTPUT_NAMES, to_datetime64, vector_dataset
from driftline.forcing.model import BBox, Coverage, SourceConfig
from driftline.forcing.plan import plan_forcing
from driftline.forcing.sources import (
    SOURCE_KINDS,
    ConstantSource,
    CopernicusMarineSource,
    ForcingSource,
    GribSource,
    NetcdfSource,
    build_source,
)
from driftline.forcing.subset import subset_to_file


def _catalog(tmp_path: Path, *sources: dict[str, object]) -> Catalog:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"sources": list(sources)}))
    return Catalog.from_file(path)


def _mission(**forcing: str) -> MissionCreate:
    return MissionCreate.model_validate(
        {
            "name": "t",
            "object_type": "PIW-1",
            "duration_hours": 6,
            "last_known_position": {"lat": 60.0, "lon": 4.0, "time": "2024-01-01T06:00:00Z"},
            "forcing": forcing,
        }
    )


def test_registry_lists_each_documented_kind_once() -> None:
    expected = {
        "netcdf": NetcdfSource,
        "grib": GribSource,
        "copernicusmarine": CopernicusMarineSource,
        "constant": ConstantSource,
    }
    assert dict(SOURCE_KINDS) == expected
    assert all(cls.kind == kind for kind, cls in SOURCE_KINDS.items())
    assert [k for k, cls in SOURCE_KINDS.items() if cls.synthetic] == ["constant"]


def test_unknown_kind_is_a_configuration_error_naming_the_allowed_kinds(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        _catalog(tmp_path, {"name": "odd", "kind": "hdf4", "variables": ["wind"]})
    message = str(info.value)
    assert "forcing source odd: unknown kind 'hdf4'" in message
    assert "allowed: constant, copernicusmarine, grib, netcdf" in message


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"name": "n", "kind": "netcdf", "variables": ["current"]},
            "forcing source n: netcdf needs a path",
        ),
        (
            {"name": "g", "kind": "grib", "variables": ["wind"]},
            "forcing source g: grib needs a path",
        ),
        (
            {"name": "cm", "kind": "copernicusmarine", "variables": ["current"]},
            "forcing source cm: needs dataset_id",
        ),
        (
            {"name": "k", "kind": "constant", "variables": ["wind"], "values": {"wind": [0, 0]}},
            "forcing source k: constant forcing is synthetic; set synthetic_allowed: true "
            "to allow it",
        ),
    ],
)
def test_each_kind_checks_its_own_fields(
    tmp_path: Path, entry: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        _catalog(tmp_path, entry)
    assert str(info.value) == message


def test_malformed_entry_and_duplicate_names_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="source #0"):
        _catalog(tmp_path, {"name": "x", "kind": "netcdf", "path": "a.nc", "colour": "red"})
    calm = {"name": "calm", "kind": "constant", "variables": ["wind"], "synthetic_allowed": True}
    with pytest.raises(ConfigurationError, match="unique"):
        _catalog(tmp_path, calm, calm)


def test_relative_path_resolves_against_the_catalog_folder(tmp_path: Path) -> None:
    config = SourceConfig(name="s", kind="netcdf", path="sub/x.nc", variables=["current"])
    assert build_source(config, tmp_path).location == str(tmp_path / "sub" / "x.nc")
    assert build_source(config).location == "sub/x.nc"
    url = config.model_copy(update={"path": "https://example.org/x.nc"})
    assert build_source(url, tmp_path).location == "https://example.org/x.nc"


def test_copernicus_without_credentials_is_skipped_with_its_reason_in_the_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COPERNICUSMARINE_SERVICE_USERNAME", raising=False)
    monkeypatch.delenv("COPERNICUSMARINE_SERVICE_PASSWORD", raising=False)
    catalog = _catalog(
        tmp_path,
        {"name": "cm", "kind": "copernicusmarine", "dataset_id": "d", "variables": ["current"]},
        {"name": "calm", "kind": "constant", "variables": ["wind"], "synthetic_allowed": True},
    )
    with pytest.raises(ForcingGap) as info:
        plan_forcing(catalog, _mission())
    assert info.value.reason == "forcing_gap"
    assert (
        "source cm: Copernicus Marine needs credentials: set COPERNICUSMARINE_SERVICE_USERNAME "
        "and COPERNICUSMARINE_SERVICE_PASSWORD in the workers' environment"
    ) in str(info.value)


def test_constant_source_writes_its_values_as_synthetic_cf(tmp_path: Path) -> None:
    values = {"current": [0.1, -0.2], "wind": [3, 4]}
    catalog = _catalog(
        tmp_path,
        {"name": "calm", "kind": "constant", "variables": ["current", "wind"]}
        | {"values": values, "synthetic_allowed": True},
    )
    plan = plan_forcing(catalog, _mission())
    chosen = plan.sources["wind"]
    assert chosen.synthetic and chosen.coverage is None and chosen.location is None
    out = subset_to_file(chosen, plan.area, plan.start, plan.end, tmp_path / "w.nc")
    with xr.open_dataset(out) as ds:
        np.testing.assert_allclose(ds["x_wind"].values, 3.0)
        np.testing.assert_allclose(ds["y_wind"].values, 4.0)
        assert ds.attrs["source"] == "driftline constant calm (synthetic)"


class _UniformTestSource(ForcingSource):
    """A kind that exists only in this test: proves a new kind needs no other edits."""

    kind = "test-uniform"

    def check(self) -> None:
        if "current" not in self.config.values:
            raise self.invalid("needs values.current")

    def coverage(self) -> Coverage:
        start = datetime(2024, 1, 1, tzinfo=UTC)
        return Coverage(BBox(0, 50, 10, 70), start, start + timedelta(days=2), 0.5)

    def subset(self, variable: str, box: BBox, start: datetime, end: datetime) -> xr.Dataset:
        times = np.array([to_datetime64(start), to_datetime64(end)])
        lats, lons = np.array([box.lat_min, box.lat_max]), np.array([box.lon_min, box.lon_max])
        u, v = self.config.values[variable]
        names = OUTPUT_NAMES[variable]
        full = (np.full((2, 2, 2), u), np.full((2, 2, 2), v))
        return vector_dataset(names, names, full, (times, lats, lons), source="test")


def test_a_new_kind_is_one_class_and_one_registry_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(SOURCE_KINDS, _UniformTestSource.kind, _UniformTestSource)
    with pytest.raises(ConfigurationError, match=r"forcing source u: needs values\.current"):
        _catalog(tmp_path, {"name": "u", "kind": "test-uniform", "variables": ["current"]})
    catalog = _catalog(
        tmp_path,
        {"name": "u", "kind": "test-uniform", "variables": ["current"]}
        | {"values": {"current": [0.5, 0.0]}},
        {"name": "calm", "kind": "constant", "variables": ["wind"]}
        | {"values": {"wind": [0, 0]}, "synthetic_allowed": True},
    )
    plan = plan_forcing(catalog, _mission())
    chosen = plan.sources["current"]
    assert isinstance(chosen.source, _UniformTestSource) and not chosen.synthetic
    assert plan.cache_key(chosen).startswith("u-current-")
    out = subset_to_file(chosen, plan.area, plan.start, plan.end, tmp_path / "u.nc")
    with xr.open_dataset(out) as ds:
        np.testing.assert_allclose(ds["x_sea_water_velocity"].values, 0.5)
