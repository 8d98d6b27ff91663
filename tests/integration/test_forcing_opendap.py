"""`netcdf` sources over OPeNDAP: read lazily, only the mission's hyperslab crosses the wire.

A real DAP2 server (pydap's protocol handler, tests/opendap_server.py) serves the sample
forcing on 127.0.0.1 from a child process and logs the bytes of every response.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import xarray as xr

from driftline.contracts.missions import MissionCreate
from driftline.errors import ForcingGap, ForcingUnavailable
from driftline.forcing.catalog import Catalog
from driftline.forcing.plan import plan_forcing
from driftline.forcing.sample import write_sample_forcing
from driftline.forcing.sources.netcdf import clear_coverage_cache
from driftline.forcing.subset import subset_to_file
from tests.opendap_server import RunningServer, opendap_server

START = datetime(2024, 1, 1)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dap")
    return write_sample_forcing(root, lat=60, lon=4, start=START, hours=48).current_path


@pytest.fixture
def server(sample: Path, tmp_path: Path) -> Iterator[RunningServer]:
    clear_coverage_cache()  # coverage of a URL is cached per process: read it afresh
    with opendap_server([sample], tmp_path / "dap.log") as running:
        yield running
    clear_coverage_cache()


def _catalog(root: Path, current: str) -> Catalog:
    path = root / "catalog.json"
    sources = [
        {"name": "current", "kind": "netcdf", "path": current, "variables": ["current"]},
        {"name": "calm", "kind": "constant", "variables": ["wind"]}
        | {"values": {"wind": [0, 0]}, "synthetic_allowed": True},
    ]
    path.write_text(json.dumps({"sources": sources}))
    return Catalog.from_file(path)


def _mission() -> MissionCreate:
    return MissionCreate.model_validate(
        {
            "name": "dap",
            "object_type": "PIW-1",
            "duration_hours": 6,
            "last_known_position": {"lat": 60.0, "lon": 4.0, "time": "2024-01-01T06:00:00Z"},
        }
    )


def test_only_the_subset_crosses_the_wire_and_equals_the_local_cut(
    server: RunningServer, sample: Path, tmp_path: Path
) -> None:
    url = server.url(sample)
    remote_plan = plan_forcing(_catalog(tmp_path, url), _mission())
    chosen = remote_plan.sources["current"]
    assert chosen.location == url and chosen.coverage is not None
    server.forget()  # count the cut alone; coverage (axes only) was read above
    remote = subset_to_file(
        chosen, remote_plan.area, remote_plan.start, remote_plan.end, tmp_path / "remote.nc"
    )
    local_plan = plan_forcing(_catalog(tmp_path, str(sample)), _mission())
    local = subset_to_file(
        local_plan.sources["current"],
        local_plan.area,
        local_plan.start,
        local_plan.end,
        tmp_path / "local.nc",
    )
    with xr.open_dataset(remote) as ours, xr.open_dataset(local) as theirs:
        xr.testing.assert_equal(ours, theirs)
        subset_values = sum(ours[v].size for v in ours.data_vars)
    with xr.open_dataset(sample) as whole:
        file_values = sum(whole[v].size for v in whole.data_vars)

    requests = server.requests()
    data = [r for r in requests if r["path"].endswith(".dods")]
    sliced = [r for r in data if "%5b" in r["query"].lower() or "[" in r["query"]]
    assert {r["query"].split("%5b")[0].split("[")[0] for r in sliced} == {"u", "v"}
    data_bytes = sum(r["bytes"] for r in sliced)
    # float32 values on the wire: 4 bytes each plus each response's DDS header.
    assert 4 * subset_values <= data_bytes <= 4 * subset_values + 1024 * len(sliced)
    # Everything sent while cutting (metadata, axes and the hyperslabs): a small part of
    # the file's data.
    assert server.bytes_sent() < 0.1 * 4 * file_values
    print(
        f"OPeNDAP cut: {server.bytes_sent()} bytes sent for {subset_values} values "
        f"(file holds {file_values} values, {4 * file_values} bytes)"
    )


def test_unreachable_server_is_skipped_with_its_reason(sample: Path, tmp_path: Path) -> None:
    clear_coverage_cache()
    with opendap_server([sample], tmp_path / "gone.log") as stopped:
        url = stopped.url(sample)
    # The server has stopped: the catalog cannot read coverage and says so.
    with pytest.raises(ForcingGap) as info:
        plan_forcing(_catalog(tmp_path, url), _mission())
    assert f"cannot open forcing {url}" in str(info.value)
    source = _catalog(tmp_path, url).sources[0]
    with pytest.raises(ForcingUnavailable, match=re.escape(f"cannot open forcing {url}")):
        source.coverage()
