"""The CLI's commands for scripts (`--json`) and `missions cancel`, against the real API
and database; the local services' status as another checkout sees them."""

from __future__ import annotations

import json

from driftline.settings import PROJECT_ROOT, Settings
from tests.cli_harness import driftline, new_api_key, serving_api

EXAMPLE = str(PROJECT_ROOT / "examples" / "mission.json")


async def test_json_output_for_scripts(settings: Settings) -> None:
    created = await driftline(settings, "keys", "create", "--tenant", "jrcc-json", "--json")
    assert created.code == 0, created.text
    keys = json.loads(created.out)
    assert keys["tenant"] == "jrcc-json" and keys["webhook_secret"].startswith("whsec_")

    async with serving_api(settings) as served:
        submitted = await driftline(
            served, "submit", EXAMPLE, "--json", "--api-key", keys["api_key"]
        )
        assert submitted.code == 0, submitted.text
        accepted = json.loads(submitted.out)
        assert accepted["status"] == "accepted" and set(accepted["links"]) >= {"self", "events"}

    listed = await driftline(settings, "missions", "list", "--tenant", "jrcc-json", "--json")
    assert listed.code == 0, listed.text
    rows = json.loads(listed.out)
    assert [r["id"] for r in rows] == [accepted["id"]] and rows[0]["status"] == "accepted"

    shown = await driftline(settings, "missions", "show", accepted["id"], "--json")
    assert shown.code == 0, shown.text
    mission = json.loads(shown.out)
    assert mission["tenant"] == "jrcc-json" and mission["request"]["particles"] == 2000

    letters = await driftline(settings, "dlq", "list", "--json")
    assert letters.code == 0, letters.text
    assert json.loads(letters.out) == []


async def test_keys_create_prints_the_export_line(settings: Settings) -> None:
    created = await driftline(settings, "keys", "create", "--tenant", "jrcc-export")
    assert created.code == 0, created.text
    export = created.out.strip().splitlines()[-1]
    assert export.startswith("export DRIFTLINE_API_KEY=") and len(export) > 40


async def test_cancel_over_the_api(settings: Settings) -> None:
    key = await new_api_key(settings)
    async with serving_api(settings) as served:
        submitted = await driftline(served, "submit", EXAMPLE, "--json", "--api-key", key)
        mission_id = json.loads(submitted.out)["id"]
        cancelled = await driftline(served, "missions", "cancel", mission_id, "--api-key", key)
        assert cancelled.code == 0, cancelled.text
        assert f"mission {mission_id} cancelled" in cancelled.out
        again = await driftline(
            served, "missions", "cancel", mission_id, "--json", "--api-key", key
        )
        assert again.code == 0 and json.loads(again.out)["status"] == "cancelled"
        watched = await driftline(served, "missions", "watch", mission_id, "--api-key", key)
    assert watched.code == 1 and "cancelled" in watched.out, watched.text


async def test_infra_status_names_services_this_checkout_did_not_start(
    settings: Settings, tmp_path: object
) -> None:
    """Another checkout (its own infra folder) sees the running services as running, not
    started by it, with the pid that holds each port."""
    other = {"DRIFTLINE_INFRA_DIR": str(tmp_path)}
    status = await driftline(settings, "infra", "status", "--kafka-nodes", "1", env=other)
    assert status.code == 0, status.text
    rows = [line for line in status.out.splitlines() if "127.0.0.1:" in line]
    assert len(rows) == 3, status.out
    for row in rows:
        assert "running, not started by this checkout" in row, status.out
        assert row.split("│")[3].strip().isdigit(), row  # the holder's pid, not "-"
