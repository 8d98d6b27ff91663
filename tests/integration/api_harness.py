"""The real API app on the test's own database, driven in-process through httpx.

`running_api` starts the app's lifespan (status feed included), creates one API key per
tenant and hands back an `ApiHarness`; settings overrides (low limits, short timeouts)
are passed by keyword.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from driftline.api.app import create_app
from driftline.api.deps import ApiServices
from driftline.auth import create_api_key
from driftline.db.unit_of_work import Database
from driftline.missions import CallbackCheck
from driftline.settings import Settings

PROBLEM_KEYS = {"type", "title", "status", "detail"}


@dataclass
class ApiHarness:
    client: httpx.AsyncClient
    database: Database
    services: ApiServices
    keys: dict[str, str]
    key_ids: dict[str, uuid.UUID]

    def auth(self, tenant: str = "alpha") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant]}"}

    async def post(self, body: Any, tenant: str = "alpha", **headers: str) -> httpx.Response:
        return await self.client.post(
            "/v1/missions", json=body, headers={**self.auth(tenant), **headers}
        )

    def raw_auth(self, tenant: str = "alpha", **headers: bytes) -> dict[bytes, bytes]:
        """The key plus headers sent byte for byte (latin-1 on the wire, as HTTP has it)."""
        raw = {k.encode(): v.encode() for k, v in self.auth(tenant).items()}
        return raw | {k.replace("_", "-").encode(): v for k, v in headers.items()}

    async def wait_listening(self, timeout_s: float = 10.0) -> None:
        """Until the status feed's LISTEN connection is up."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self.services.feed.listening:
            assert asyncio.get_running_loop().time() < deadline, "status feed never listened"
            await asyncio.sleep(0.05)

    async def wait_streams(
        self, count: int, tenant: str = "alpha", timeout_s: float = 10.0
    ) -> None:
        """Until `tenant`'s key has `count` status streams open."""
        for _ in range(int(timeout_s / 0.02)):
            if self.services.slots.open(self.key_ids[tenant]) >= count:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{count} streams never opened")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """`response` is RFC 9457 problem details with `status`; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert set(body) >= PROBLEM_KEYS and body["status"] == status, body
    return body


def error_fields(response: httpx.Response) -> set[str]:
    return {entry["field"] for entry in assert_problem(response, 422)["errors"]}


@asynccontextmanager
async def running_api(
    settings: Settings,
    *,
    tenants: tuple[str, ...] = ("alpha", "bravo"),
    check_callback: CallbackCheck | None = None,
    raise_app_exceptions: bool = True,
    **overrides: Any,
) -> AsyncIterator[ApiHarness]:
    settings = settings.model_copy(update=overrides)
    database = Database(settings)
    keys: dict[str, str] = {}
    key_ids: dict[str, uuid.UUID] = {}
    try:
        async with database.unit_of_work() as uow:
            for tenant in tenants:
                keys[tenant] = await create_api_key(uow, tenant, label=f"{tenant} test key")
        async with database.unit_of_work() as uow:
            for tenant in tenants:
                key_ids[tenant] = (await uow.tenants.keys(tenant))[0].id
        app = create_app(settings, check_callback=check_callback)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield ApiHarness(client, database, app.state.services, keys, key_ids)
    finally:
        await database.close()
