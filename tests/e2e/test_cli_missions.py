"""A coordinator's CLI against a running pipeline: `missions watch` across a dropped
status stream, `missions download`, `submit --json --wait`, links never cut."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from driftline.settings import PROJECT_ROOT, Settings
from tests.cli_harness import driftline
from tests.pipeline import HAPPY_PATH, mission_body, running_pipeline, settings_env
from tests.tcp_proxy import TcpProxy

EXAMPLE = str(PROJECT_ROOT / "examples" / "mission.json")


async def test_watch_resumes_a_dropped_stream_and_download_checks_every_artifact(
    pipeline_settings: Settings, simulation_pool: Any, tmp_path: Path
) -> None:
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        port = int(p.base_url.rsplit(":", 1)[1])
        proxy = TcpProxy("127.0.0.1", port)
        await proxy.start()
        mission_id = await p.submit(mission_body(duration_hours=6, particles=200))
        watch = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "driftline.cli.main",
            "missions",
            "watch",
            mission_id,
            "--json",
            "--api-url",
            f"http://127.0.0.1:{proxy.port}",
            "--api-key",
            p.api_key,
            env=settings_env(p.settings),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert watch.stdout is not None and watch.stderr is not None
        first = json.loads(await asyncio.wait_for(watch.stdout.readline(), 60))
        await proxy.cut()  # the stream drops; reconnecting is refused for a while
        await asyncio.sleep(2)
        await proxy.restore()
        rest, err = await asyncio.wait_for(watch.communicate(), 180)
        await proxy.cut()
        statuses = [first["status"]] + [json.loads(line)["status"] for line in rest.splitlines()]
        assert watch.returncode == 0, err.decode()
        assert statuses == HAPPY_PATH, statuses  # nothing missed, nothing twice
        assert b"reconnecting" in err and b"Traceback" not in err

        out = tmp_path / "results"
        download = await driftline(
            p.settings,
            "missions",
            "download",
            mission_id,
            "--out",
            str(out),
            "--api-key",
            p.api_key,
        )
        assert download.code == 0, download.text
        async with p.client() as client:
            listed = (await client.get(f"/v1/missions/{mission_id}/results")).json()["artifacts"]
        for artifact in listed:
            data = (out / artifact["name"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == artifact["sha256"]
        assert f"{len(listed)} artifacts" in download.out


async def test_submit_json_wait_and_links_whole_on_a_narrow_terminal(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        small = Path(pipeline_settings.work_dir).parent / "small.json"
        small.write_text(json.dumps(mission_body(duration_hours=6, particles=200)))
        done = await driftline(
            p.settings, "submit", str(small), "--json", "--wait", "--api-key", p.api_key
        )
        assert done.code == 0, done.text
        mission = json.loads(done.out)
        assert mission["status"] == "completed"
        assert {a["name"] for a in mission["results"]["artifacts"]} >= {"products/map.png"}

        shown = await driftline(
            p.settings,
            "submit",
            str(small),
            "--wait",
            "--api-key",
            p.api_key,
            env={"COLUMNS": "80"},
        )
        assert shown.code == 0, shown.text
        second = shown.out.split("accepted: mission", 1)[1].split()[0]
        async with p.client() as client:
            results = (await client.get(f"/v1/missions/{second}/results")).json()
        lines = shown.out.splitlines()
        for artifact in results["artifacts"]:  # each link whole, on a line of its own
            assert artifact["href"] in lines, shown.out
