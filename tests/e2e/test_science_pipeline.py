"""The pipeline's science equals OpenDrift's own; forcing subsets are shared; webhooks sign."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from prometheus_client import REGISTRY

from driftline.auth import webhook_secret
from driftline.settings import Settings
from driftline.storage.factory import open_artifact_store
from driftline.webhooks import verify
from tests.pipeline import eventually, mission_body, running_pipeline


def _direct_opendrift_run(seed: int, forcing: list[Path], body: dict[str, Any], out: Path) -> None:
    """The same mission straight through OpenDrift's API, no Driftline code involved."""
    from datetime import datetime, timedelta

    from opendrift.models.leeway import Leeway
    from opendrift.readers import reader_netCDF_CF_generic

    lkp = body["last_known_position"]
    model = Leeway(loglevel=50)
    np.random.seed(seed)
    model.add_reader([reader_netCDF_CF_generic.Reader(str(p)) for p in forcing])
    start = datetime.fromisoformat(lkp["time"].replace("Z", ""))
    model.seed_elements(
        lon=lkp["lon"],
        lat=lkp["lat"],
        radius=lkp["radius_m"],
        number=body["particles"],
        time=start,
        object_type=7,
        radius_type="gaussian",
    )
    model.run(
        duration=timedelta(hours=body["duration_hours"]),
        time_step=600,
        time_step_output=1800,
        outfile=str(out),
        export_variables=["lon", "lat", "status"],
    )


async def test_pipeline_trajectories_equal_a_direct_opendrift_run(
    pipeline_settings: Settings, simulation_pool: Any, tmp_path: Path
) -> None:
    body = mission_body(particles=300)
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        mission_id = await p.submit(body)
        assert (await p.wait_final(mission_id))["status"] == "completed"
        async with p.database.unit_of_work() as uow:
            mission = await uow.missions.get(uuid.UUID(mission_id))
            assert mission is not None and mission.result is not None
        forcing_keys = [f["key"] for f in mission.result["summary"]["forcing"]]
        async with open_artifact_store(p.settings) as storage:
            paths = []
            for index, key in enumerate(forcing_keys):
                path = tmp_path / f"forcing-{index}.nc"
                await storage.download(key, path)
                paths.append(path)
            await storage.download(
                f"{p.tenant}/{mission_id}/raw/particles.nc", tmp_path / "pipeline.nc"
            )
    from driftline.simulation.leeway import seed_from_mission_id

    direct = tmp_path / "direct.nc"
    await asyncio.to_thread(
        _direct_opendrift_run, seed_from_mission_id(mission_id), paths, body, direct
    )
    with xr.open_dataset(tmp_path / "pipeline.nc") as ours, xr.open_dataset(direct) as theirs:
        np.testing.assert_array_equal(ours["lon"].values, theirs["lon"].values)
        np.testing.assert_array_equal(ours["lat"].values, theirs["lat"].values)
        assert ours["lon"].shape == (300, 25)


def _fetches() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "driftline_forcing_subsets_fetched":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


async def test_two_missions_needing_the_same_subset_fetch_it_once(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    before = _fetches()
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        first, second = await asyncio.gather(
            p.submit(mission_body(name="first")),
            p.submit(mission_body(name="second")),
        )
        for mission_id in (first, second):
            assert (await p.wait_final(mission_id))["status"] == "completed"
        async with open_artifact_store(p.settings) as storage:
            stored = await storage.list("forcing/")
    assert _fetches() - before == 2, "one current subset and one wind subset, fetched once"
    assert len(stored) == 2


class _Receiver(BaseHTTPRequestHandler):
    calls: list[tuple[dict[str, str], bytes]] = []
    fail_first = 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
        status = 503 if len(type(self).calls) <= type(self).fail_first else 204
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.calls = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


async def test_completed_mission_calls_the_signed_webhook(
    pipeline_settings: Settings, simulation_pool: Any, receiver: str
) -> None:
    settings = pipeline_settings.model_copy(
        update={
            "webhook_allowlist": ["127.0.0.1"],
            "webhook_retry_schedule_s": [0.0, 0.5, 0.5],
            "webhook_poll_interval_s": 0.1,
        }
    )
    async with running_pipeline(settings, simulation_pool=simulation_pool) as p:
        mission_id = await p.submit(mission_body(callback_url=receiver))
        assert (await p.wait_final(mission_id))["status"] == "completed"

        async def delivered() -> bool:
            async with p.database.unit_of_work() as uow:
                found = await uow.webhooks.listing(mission_id=uuid.UUID(mission_id))
            return bool(found) and found[0].state == "delivered"

        await eventually(delivered, timeout_s=20)
        async with p.database.unit_of_work() as uow:
            secret = await webhook_secret(uow, p.tenant)
            [delivery] = await uow.webhooks.listing(mission_id=uuid.UUID(mission_id))
            attempts = await uow.webhooks.attempts(delivery.webhook_id)
    assert secret is not None
    assert len(_Receiver.calls) == 2, "503 once, then delivered"
    assert [a.status_code for a in attempts] == [503, 204], "every attempt recorded"
    (first_headers, _), (headers, body) = _Receiver.calls
    assert first_headers["webhook-id"] == headers["webhook-id"], "stable across retries"
    verify(secret, headers, body)
    event = json.loads(body)
    assert event["type"] == "driftline.mission.completed.v1"
    assert event["data"]["mission_id"] == mission_id


async def test_private_callback_is_refused_at_post(
    pipeline_settings: Settings, simulation_pool: Any, receiver: str
) -> None:
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        response = await p.post_mission(mission_body(callback_url=receiver))
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["type"]) == ("callback_url", "callback_url_refused")
    assert _Receiver.calls == [], "loopback is not allow-listed here"
