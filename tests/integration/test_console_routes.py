"""The console's routes on the real API app and its own database: the page and its
assets without a key, the tile setting, and the mission layers behind the key with the
REST API's tenant isolation (the browser story itself is tests/e2e/test_console.py)."""

from __future__ import annotations

from driftline.settings import Settings
from tests.helpers import mission_body
from tests.integration.api_harness import assert_problem, running_api


async def test_the_page_and_its_assets_need_no_key(settings: Settings) -> None:
    async with running_api(settings) as api:
        moved = await api.client.get("/console")
        assert moved.status_code == 308 and moved.headers["location"] == "console/"
        page = await api.client.get("/console/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'src="static/app.js"' in page.text
        leaflet = await api.client.get("/console/static/vendor/leaflet/leaflet.js")
        assert leaflet.status_code == 200 and "javascript" in leaflet.headers["content-type"]
        assert (await api.client.get("/console/static/../app.py")).status_code == 404
        config = (await api.client.get("/console/config.json")).json()
        assert config["tile_url"] is None  # offline by default
        assert config["leaflet_version"] == "1.9.4"
        assert "/console" not in (await api.client.get("/openapi.json")).text


async def test_a_tile_url_is_handed_to_the_page_when_configured(settings: Settings) -> None:
    tiles = "https://tile.example.org/{z}/{x}/{y}.png"
    async with running_api(
        settings, console_tile_url=tiles, console_tile_attribution="© Example"
    ) as api:
        config = (await api.client.get("/console/config.json")).json()
    assert config["tile_url"] == tiles and config["tile_attribution"] == "© Example"


async def test_mission_layers_are_behind_the_key_and_the_tenant(settings: Settings) -> None:
    async with running_api(settings) as api:
        accepted = await api.post(mission_body())
        layers = f"/v1/missions/{accepted.json()['id']}/layers"
        assert_problem(await api.client.get(layers), 401)
        assert_problem(await api.client.get(layers, headers=api.auth("bravo")), 404)
        not_yet = assert_problem(await api.client.get(layers, headers=api.auth("alpha")), 409)
        assert "accepted" in not_yet["detail"]
        bad = await api.client.get("/console/land", params={"bbox": "1,2,3", "zoom": 4})
        assert_problem(bad, 422)
