"""`/console`: the coordinator's web page, its offline basemap and its mission layers.

The page and its assets (Leaflet vendored, no CDN) are static files of the package.
`/console/land` serves GSHHG land for a map view (public like the page: it is the same
for everyone and holds nothing of a tenant). `/v1/missions/{id}/layers` serves the
particles and density per time of a completed mission; it is under `/v1`, so the edge
authenticates and rate-limits it and another tenant's mission answers 404, exactly as
the REST API. Neither is in the OpenAPI document: they exist for the page, not for
integrators, who have the NetCDF artifacts.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Query, status
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from driftline import __version__
from driftline.api.deps import ApiServices, ServicesDep
from driftline.api.missions import OwnedMission, _result_of
from driftline.api.problems import MISSION_NOT_COMPLETED, ApiProblem
from driftline.console import STATIC_DIR
from driftline.console.coastline import Coastline, View
from driftline.console.layers import PARTICLES_ARTIFACT, mission_layers
from driftline.contracts.missions import MissionStatus
from driftline.errors import ArtifactNotFound
from driftline.retention import RetentionPolicy
from driftline.settings import Settings

#: Completed missions' layers kept in memory (they never change once completed).
CACHED_MISSIONS = 16
LEAFLET_VERSION_FILE = STATIC_DIR / "vendor" / "leaflet" / "VERSION"


class MissionLayerCache:
    """The last few missions' layers, by id (a completed mission's result is final)."""

    def __init__(self, size: int = CACHED_MISSIONS) -> None:
        self._size = size
        self._layers: OrderedDict[uuid.UUID, bytes] = OrderedDict()

    def get(self, mission_id: uuid.UUID) -> bytes | None:
        found = self._layers.get(mission_id)
        if found is not None:
            self._layers.move_to_end(mission_id)
        return found

    def put(self, mission_id: uuid.UUID, body: bytes) -> None:
        self._layers[mission_id] = body
        while len(self._layers) > self._size:
            self._layers.popitem(last=False)


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """`west,south,east,north` in degrees; ValueError if it is anything else."""
    parts = [float(p) for p in text.split(",")]
    if len(parts) != 4:
        raise ValueError("bbox needs four numbers")
    return parts[0], parts[1], parts[2], parts[3]


def console_router(settings: Settings, coastline: Coastline) -> APIRouter:
    """The console's routes; `coastline` is this app's copy of the GSHHG land."""
    router = APIRouter(include_in_schema=False)
    layer_cache = MissionLayerCache()

    @router.get("/console")
    async def console_root() -> RedirectResponse:
        # Relative, so it also works behind a proxy serving the API under a prefix.
        return RedirectResponse("console/", status_code=status.HTTP_308_PERMANENT_REDIRECT)

    @router.get("/console/")
    async def console_page() -> FileResponse:
        coastline.preload()  # the map asks for land right after the page loads
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @router.get("/console/config.json")
    async def console_config() -> dict[str, Any]:
        return {
            "version": __version__,
            "leaflet_version": LEAFLET_VERSION_FILE.read_text().strip(),
            "tile_url": settings.console_tile_url,
            "tile_attribution": settings.console_tile_attribution,
        }

    @router.get("/console/land")
    async def land(
        bbox: Annotated[str, Query(max_length=200)],
        zoom: Annotated[int, Query(ge=0, le=30)],
    ) -> Response:
        """GSHHG land of the view `bbox` at the map's `zoom` (GeoJSON)."""
        try:
            view = View.snapped(parse_bbox(bbox), zoom)
        except ValueError as exc:
            raise HTTPException(
                422,
                "bbox must be west,south,east,north in degrees with west < east, south < north",
            ) from exc
        body = await asyncio.to_thread(coastline.geojson, view)
        return Response(
            body,
            media_type="application/geo+json",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    @router.get("/v1/missions/{mission_id}/layers")
    async def layers(mission: OwnedMission, services: ServicesDep) -> Response:
        """Particles and density per output time of a completed mission (JSON)."""
        # The same rules as the artifacts: 410 once they are past their retention.
        result = _result_of(mission, RetentionPolicy.from_settings(services.settings))
        if mission.status != MissionStatus.COMPLETED.value or result is None:
            raise ApiProblem(
                MISSION_NOT_COMPLETED, f"mission is {mission.status}; layers exist once completed"
            )
        cached = layer_cache.get(mission.id)
        if cached is None:
            artifact = result.artifact(PARTICLES_ARTIFACT)
            if artifact is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "mission has no particle file")
            try:
                cached = await _layers_json(services, artifact.key)
            except ArtifactNotFound as exc:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, "particle file missing from storage"
                ) from exc
            layer_cache.put(mission.id, cached)
        return Response(cached, media_type="application/json")

    return router


async def _layers_json(services: ApiServices, key: str) -> bytes:
    """The layers of the particle file stored under `key`, read from a scratch copy."""
    scratch = Path(await asyncio.to_thread(_scratch_dir, services.settings.work_dir))
    try:
        particles = scratch / "particles.nc"
        await services.storage.download(key, particles)
        layers = await asyncio.to_thread(mission_layers, particles)
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)
    return json.dumps(layers, separators=(",", ":")).encode()


def _scratch_dir(work_dir: Path) -> str:
    work_dir.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(dir=work_dir, prefix="console-")


def mount_console(app: FastAPI, settings: Settings) -> None:
    """Serve the console on `app`: the page, its static assets and its data routes."""
    app.include_router(console_router(settings, Coastline()))
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
