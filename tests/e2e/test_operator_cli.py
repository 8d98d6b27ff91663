"""The coordinator's and operator's command line against a running deployment."""

from __future__ import annotations

from typing import Any

from driftline.settings import PROJECT_ROOT, Settings
from tests.pipeline import run_cli, running_pipeline


async def test_submit_wait_shows_progress_and_results(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        out = await run_cli(
            p.settings,
            "submit",
            str(PROJECT_ROOT / "examples" / "mission.json"),
            "--wait",
            "--api-url",
            p.base_url,
            "--api-key",
            p.api_key,
        )
        assert "accepted: mission" in out
        mission_id = out.split("accepted: mission", 1)[1].split()[0]
        assert "completed (notify)" in out, out
        assert "2000 particles" in out and "containment areas" in out
        assert "products/map.png" in out
        assert (await p.mission(mission_id))["status"] == "completed"

        listed = await run_cli(p.settings, "missions", "list", "--tenant", p.tenant)
        assert mission_id in listed and "completed" in listed
        shown = await run_cli(p.settings, "missions", "show", mission_id)
        assert '"status": "completed"' in shown and '"area_km2"' in shown


async def test_help_documents_every_command(settings: Settings) -> None:
    out = await run_cli(settings, "--help")
    for command in (
        "api",
        "worker",
        "relay",
        "topics",
        "keys",
        "submit",
        "missions",
        "dlq",
        "infra",
        "demo",
        "forcing",
        "schemas",
    ):
        assert command in out
    infra = await run_cli(settings, "infra", "up", "--help")
    assert "--kafka-nodes" in infra and "--only" in infra
