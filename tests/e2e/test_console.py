"""The coordinator's console in a real browser (Debian's Chromium, driven by Playwright)
against the real stack: API, relay and the five stages on Kafka, PostgreSQL and MinIO.

One deployment serves the whole story a coordinator lives through: sign in (a wrong key
first), file a mission by clicking the map and searching the object type (a bad field
first, answered by the API's 422 next to it), watch it complete over SSE, read the
search areas at each planning time, download every artifact, open failed and cancelled
missions, and see that another tenant cannot open the mission. Assertions are on the
DOM, the downloaded bytes and the browser's console log, never on pixels. The first
paint of the mission view is measured with the Performance API and reported (not
asserted): docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import shapely
from playwright.async_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    async_playwright,
    expect,
)
from shapely.geometry import Point, shape

from driftline.auth import create_api_key
from driftline.infra.browser import CHROMIUM_ARGS, ensure_chromium
from driftline.settings import PROJECT_ROOT, Settings
from tests.pipeline import HAPPY_PATH, Pipeline, mission_body, running_pipeline

#: Screenshots go to bench/out (ignored by git); DRIFTLINE_UPDATE_SCREENSHOTS=1 refreshes
#: the README's copies in docs/images instead, so a test run leaves the tree clean.
IMAGES = PROJECT_ROOT / (
    "docs/images" if os.environ.get("DRIFTLINE_UPDATE_SCREENSHOTS") == "1" else "bench/out"
)
DEMO_MISSION = PROJECT_ROOT / "examples" / "mission.json"
FIRST_PAINT_REPORT = PROJECT_ROOT / "bench" / "out" / "console-first-paint.json"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
#: Bergen's city centre: a last known position on land, refused by the validate stage.
ON_LAND = {"lat": 60.3925, "lon": 5.3233}


@dataclass
class BrowserLog:
    """What the browser reported: console errors, uncaught exceptions, every request URL."""

    errors: list[ConsoleMessage] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> Page:
        page.on("console", lambda m: self.errors.append(m) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.exceptions.append(str(e)))
        page.on("request", lambda r: self.urls.append(r.url))
        return page

    def unexpected_errors(self, expected: set[tuple[int, str]]) -> list[str]:
        """Console errors other than the failed responses the test provoked on purpose
        (Chrome logs every 4xx as "Failed to load resource"); `expected` holds
        (status, path) pairs."""
        left = []
        for message in self.errors:
            path = urlsplit(message.location.get("url", "")).path
            provoked = any(
                f"status of {status} " in message.text and path == expected_path
                for status, expected_path in expected
            )
            if not provoked:
                left.append(f"{message.text} at {message.location}")
        return left


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """A fresh headless Chromium profile (no Playwright download: Debian's build)."""
    chromium = ensure_chromium()
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(chromium),
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport=DESKTOP,
            accept_downloads=True,
        )
        try:
            yield context
        finally:
            await context.close()


async def sign_in(page: Page, base_url: str, key: str) -> None:
    await page.goto(f"{base_url}/console")
    await page.fill("#api-key", key)
    await page.press("#api-key", "Enter")
    await expect(page.locator("#nav")).to_be_visible()


async def api_message(p: Pipeline, body: dict[str, Any], field_name: str) -> str:
    """The API's own 422 message for `field_name` of `body` (what the page must show)."""
    response = await p.post_mission(body)
    assert response.status_code == 422, response.text
    return next(e["message"] for e in response.json()["errors"] if e["field"] == field_name)


async def file_mission_through_the_form(page: Page, p: Pipeline) -> str:
    """Fill the form as a coordinator would; a bad field first, then file; the id."""
    await page.fill("#f-name", "Life raft off Sotra")
    await page.fill("#f-external-ref", "JRCC-CONSOLE-1")
    await page.locator("#map").click()  # the map opens centred on 60°N 004°E, at sea
    lkp = await page.input_value("#f-lkp")
    position = await page.evaluate("(t) => window.DriftlineConsole.parsePosition(t)", lkp)
    assert abs(position["lat"] - 60.0) < 0.1 and abs(position["lon"] - 4.0) < 0.1, lkp
    await page.fill("#f-time", "2024-01-01T06:00")
    await page.fill("#f-radius", "1000")
    await page.fill("#f-object-search", "raft deep ballast general")
    await expect(page.locator("#f-object-type option")).not_to_have_count(0)
    options = await page.locator("#f-object-type option").evaluate_all("os => os.map(o => o.value)")
    assert "LIFE-RAFT-DB-10" in options and len(options) < 10, options
    await page.select_option("#f-object-type", "LIFE-RAFT-DB-10")
    await expect(page.locator("#f-object-description")).to_contain_text("LIFE-RAFT-DB-10")
    await page.fill("#f-duration", "12")
    await page.fill("#f-particles", "5")  # below the API's minimum
    await page.click("#submit-mission")
    body = mission_body(last_known_position={**position, "time": "2024-01-01T06:00:00Z"})
    expected = await api_message(p, {**body, "particles": 5}, "particles")
    particles_error = page.locator('.field-error[data-field="particles"]')
    await expect(particles_error).to_have_text(expected)
    await expect(page.locator("#f-particles")).to_have_attribute("aria-invalid", "true")
    await page.fill("#f-particles", "300")
    await expect(particles_error).to_have_text("")  # editing the field clears its error
    await page.screenshot(path=str(IMAGES / "console-form.png"))
    await page.locator("#submit-mission").dblclick()  # a double click files one mission
    await page.wait_for_url("**/console/#/missions/*")
    return page.url.rsplit("/", 1)[-1]


async def check_basemap(p: Pipeline) -> None:
    """/console/land answers GSHHG land for a view: land where Bergen is, sea where the
    test's mission starts, and more detail per degree in a closer view."""
    async with httpx.AsyncClient(base_url=p.base_url, timeout=120) as client:
        coarse = await client.get("/console/land", params={"bbox": "3,59.5,6,61", "zoom": 7})
        fine = await client.get("/console/land", params={"bbox": "5.2,60.3,5.45,60.45", "zoom": 12})
        bad = await client.get("/console/land", params={"bbox": "6,59,3,61", "zoom": 7})
    assert bad.status_code == 422
    per_square_degree = []
    for response in (coarse, fine):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/geo+json"
        collection = response.json()
        land = shape(collection["features"][0]["geometry"])
        assert land.contains(Point(ON_LAND["lon"], ON_LAND["lat"]))
        assert not land.contains(Point(4.0, 60.0))
        west, south, east, north = collection["bbox"]
        per_square_degree.append(
            shapely.get_num_coordinates(land) / ((east - west) * (north - south))
        )
    assert per_square_degree[1] > 10 * per_square_degree[0], per_square_degree


async def keyboard_reaches_submit(page: Page) -> bool:
    """From the name field, Tab alone reaches the submit button."""
    await page.focus("#f-name")
    for _ in range(40):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == "submit-mission":
            return True
    return False


async def paths_of(page: Page, selector: str) -> list[str]:
    return list(await page.locator(selector).evaluate_all("ps => ps.map(p => p.getAttribute('d'))"))


#: Saved through the page (Chrome lets a page start about ten downloads before it asks
#: the user, which a headless browser cannot answer); every artifact gets a button.
SAVED_ARTIFACTS = (
    "raw/particles.nc",
    "products/containment.geojson",
    "products/map.png",
    "products/summary.json",
)


async def check_downloads(page: Page, p: Pipeline, mission_id: str) -> None:
    """A button per artifact; each saves the artifact's exact bytes (fetched with the key)."""
    async with p.client() as client:
        results = (await client.get(f"/v1/missions/{mission_id}/results")).json()
    buttons = await page.locator("#downloads button").evaluate_all(
        "bs => bs.map(b => b.dataset.artifact)"
    )
    artifacts = {a["name"]: a for a in results["artifacts"]}
    assert buttons == list(artifacts)
    for name in SAVED_ARTIFACTS:
        async with page.expect_download() as started:
            await page.click(f'#downloads button[data-artifact="{name}"]')
        download = await started.value
        saved = Path(await download.path())
        saved_bytes = await asyncio.to_thread(saved.read_bytes)
        assert hashlib.sha256(saved_bytes).hexdigest() == artifacts[name]["sha256"], name
        assert download.suggested_filename == name.rsplit("/", 1)[-1]


async def measure_first_paint(
    context: BrowserContext, base_url: str, key: str, mission: str
) -> dict[str, float]:
    """Open the completed mission in a new tab, already signed in; Performance API times."""
    page = await context.new_page()
    await page.add_init_script(f"sessionStorage.setItem('driftline.apiKey', {json.dumps(key)})")
    await page.goto(f"{base_url}/console/#/missions/{mission}")
    await page.wait_for_selector(f'body[data-mission-drawn="{mission}"]', timeout=30_000)
    timings: dict[str, float] = await page.evaluate(
        """() => {
            const paint = Object.fromEntries(
                performance.getEntriesByType('paint').map(e => [e.name, e.startTime]));
            const drawn = performance.getEntriesByName('driftline:mission-drawn')[0];
            const nav = performance.getEntriesByType('navigation')[0];
            return {
                first_paint_ms: paint['first-paint'],
                first_contentful_paint_ms: paint['first-contentful-paint'],
                dom_content_loaded_ms: nav.domContentLoadedEventEnd,
                mission_drawn_ms: drawn.startTime,
            };
        }"""
    )
    await page.close()
    return timings


async def test_console_files_follows_and_shows_a_mission(
    pipeline_settings: Settings, simulation_pool: Any, browser: BrowserContext
) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    log = BrowserLog()
    # Status streams idle out after 1 s, so the page has to resume them (Last-Event-ID).
    streams_end_soon = pipeline_settings.model_copy(
        update={"sse_idle_timeout_s": 1.0, "sse_keepalive_s": 0.5}
    )
    async with running_pipeline(streams_end_soon, simulation_pool=simulation_pool) as p:
        async with p.database.unit_of_work() as uow:
            bravo_key = await create_api_key(uow, "bravo-console")
        page = log.watch(await browser.new_page())

        # The basemap: GSHHG land for the view (Bergen is land, the LKP is sea), a
        # graticule, and no raster tiles unless a tile URL is configured.
        await check_basemap(p)

        # Sign in: a wrong key is refused in words, the right one lets the coordinator in.
        await page.goto(f"{p.base_url}/console")
        await page.fill("#api-key", "dl_not_a_real_key")
        await page.click("#sign-in-button")
        await expect(page.locator("#sign-in-error")).to_contain_text("refused")
        await page.fill("#api-key", p.api_key)
        await page.click("#sign-in-button")
        await expect(page.locator("#mission-form")).to_be_visible()
        assert await keyboard_reaches_submit(page)
        await page.set_viewport_size(PHONE)  # the form fits a phone, the map above it
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        await expect(page.locator("#f-lkp")).to_be_visible()
        await page.set_viewport_size(DESKTOP)
        await page.wait_for_selector("body[data-land-zoom]")
        assert await page.locator(".graticule-label").count() > 4
        assert await page.locator(".leaflet-tile").count() == 0

        mission_id = await file_mission_through_the_form(page, p)
        async with p.client() as client:
            listed = (await client.get("/v1/missions")).json()["items"]
        assert [m["id"] for m in listed] == [mission_id]
        assert listed[0]["request"]["particles"] == 300
        # `make demo`'s mission, simulated meanwhile: the first paint is measured on it.
        demo_id = await p.submit(json.loads(DEMO_MISSION.read_text()))

        # Live progress over SSE, stage by stage, to completed; then the layers.
        status = page.locator("#mission-status")
        await expect(status).to_have_attribute("data-status", "completed", timeout=240_000)
        events = await page.locator("#mission-events li").evaluate_all(
            "items => items.map(i => i.dataset.status)"
        )
        assert events == HAPPY_PATH
        await page.wait_for_selector(f'body[data-mission-drawn="{mission_id}"]')
        await expect(page.locator("path.containment")).to_have_count(3)
        levels = await page.locator("#area-table tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.level)"
        )
        assert sorted(levels) == ["50", "90", "95"]
        await expect(page.locator("path.lkp")).to_have_count(1)
        await expect(page.locator("path.datum-track")).to_have_count(1)
        await expect(page.locator("img.density")).to_have_count(1)

        # The planning-time slider changes the areas.
        last_time = await page.get_attribute("body", "data-area-time")
        last_paths = await paths_of(page, "path.containment")
        await page.focus("#area-time")
        await page.keyboard.press("Home")
        first_time = await page.get_attribute("body", "data-area-time")
        assert first_time and last_time and first_time < last_time
        await expect(page.locator("path.containment")).to_have_count(3)
        assert await paths_of(page, "path.containment") != last_paths
        await page.keyboard.press("End")
        assert await page.get_attribute("body", "data-area-time") == last_time

        # The particle slider moves through the output times.
        final_particles = await page.get_attribute("body", "data-particle-time")
        await page.focus("#particle-time")
        await page.keyboard.press("Home")
        assert await page.get_attribute("body", "data-particle-time") == "2024-01-01T06:00:00Z"
        assert final_particles == "2024-01-01T18:00:00Z"
        await page.keyboard.press("End")

        await check_downloads(page, p, mission_id)
        await page.locator("#panel").evaluate("panel => panel.scrollTo(0, 0)")
        await page.screenshot(path=str(IMAGES / "console-mission.png"))

        # On a phone the page reflows: no sideways scrolling, the map still there.
        await page.set_viewport_size(PHONE)
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        map_box = await page.locator("#map").bounding_box()
        assert map_box is not None and 300 <= map_box["width"] <= PHONE["width"]
        await expect(page.locator("#mission-status")).to_be_visible()
        await page.set_viewport_size(DESKTOP)

        # A mission without products: failed (its position is on land).
        failed_id = await p.submit(
            mission_body(last_known_position={**ON_LAND, "time": "2024-01-01T06:00:00Z"})
        )
        await page.goto(f"{p.base_url}/console/#/missions/{failed_id}")
        await expect(status).to_have_attribute("data-status", "failed", timeout=120_000)
        await expect(page.locator("#mission-failure")).to_contain_text("on land")
        assert await page.locator("#results").is_hidden()
        assert (await p.wait_final(demo_id))["status"] == "completed"
        # Three loads: the first reads the particle file, the next ones its cached layers.
        loads = [
            await measure_first_paint(browser, p.base_url, p.api_key, demo_id) for _ in range(3)
        ]
        print(f"\nconsole first paint on the demo mission: {json.dumps(loads)}")
        FIRST_PAINT_REPORT.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "mission": "examples/mission.json (2,000 particles, 24 h)",
            "viewport": DESKTOP,
            "loads": loads,
        }
        FIRST_PAINT_REPORT.write_text(json.dumps(report, indent=2))

        # A mission waiting at a stopped stage: its stream idles out (1 s here) and the
        # page resumes it with Last-Event-ID, without repeating a change; then it is
        # cancelled and the page shows it.
        await p.stop_task("validate")
        cancelled_id = await p.submit(mission_body(name="Cancelled by the coordinator"))
        await page.goto(f"{p.base_url}/console/#/missions/{cancelled_id}")
        await page.wait_for_function("Number(document.body.dataset.statusStreams) >= 3")
        async with p.client() as client:
            cancelled = await client.delete(f"/v1/missions/{cancelled_id}")
        assert cancelled.status_code == 202, cancelled.text
        await expect(status).to_have_attribute("data-status", "cancelled")
        assert await page.locator("#mission-events li").evaluate_all(
            "items => items.map(i => i.dataset.status)"
        ) == ["accepted", "cancelled"]
        await expect(page.locator("#mission-notice")).to_contain_text("cancelled")
        await page.goto(f"{p.base_url}/console/#/missions")
        rows = page.locator("#mission-table tbody tr")
        await expect(rows).to_have_count(4)
        await expect(rows.first).to_have_attribute("data-mission-id", cancelled_id)

        # Another tenant sees neither the mission nor it in the list.
        other = log.watch(await browser.new_page())
        await sign_in(other, p.base_url, bravo_key)
        await other.goto(f"{p.base_url}/console/#/missions/{mission_id}")
        await expect(other.locator("#mission-notice")).to_contain_text("No such mission")
        await expect(other.locator("path.containment")).to_have_count(0)
        await other.goto(f"{p.base_url}/console/#/missions")
        await expect(other.locator("#missions-empty")).to_be_visible()
        await expect(other.locator("#mission-table tbody tr")).to_have_count(0)

        # The key never travelled in a URL; nothing went to the internet.
        assert not [u for u in log.urls if p.api_key in u or bravo_key in u]
        hosts = {urlsplit(u).hostname for u in log.urls if urlsplit(u).scheme in ("http", "https")}
        assert hosts == {"127.0.0.1"}, hosts

    assert log.exceptions == []
    provoked = {
        (401, "/v1/missions"),  # the wrong key
        (422, "/v1/missions"),  # the bad field
        (404, f"/v1/missions/{mission_id}"),  # the other tenant
        (404, f"/v1/missions/{mission_id}/events"),
    }
    assert log.unexpected_errors(provoked) == []
