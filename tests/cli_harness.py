"""Running `driftline` as a person would (its own process, settings from the environment)
against an API served on a loopback port inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from driftline.api.app import create_app
from driftline.auth import create_api_key
from driftline.db.unit_of_work import Database
from driftline.settings import Settings
from tests.pipeline import free_port, settings_env


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


async def driftline(
    settings: Settings, *args: str, env: dict[str, str] | None = None, timeout_s: float = 120
) -> CliRun:
    """`driftline ARGS` in a process of its own; never raises on a non-zero exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "driftline.cli.main",
        *args,
        env={**settings_env(settings), "COLUMNS": "200", **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return CliRun(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


async def new_api_key(settings: Settings, tenant: str = "jrcc-cli") -> str:
    database = Database(settings)
    try:
        async with database.unit_of_work() as uow:
            return await create_api_key(uow, tenant, "cli test")
    finally:
        await database.close()


@asynccontextmanager
async def serving_api(settings: Settings, **overrides: Any) -> AsyncIterator[Settings]:
    """The real API on a free loopback port; yields settings whose `public_base_url`
    (what the CLI uses by default) points at it."""
    port = free_port()
    served = settings.model_copy(
        update={"public_base_url": f"http://127.0.0.1:{port}", "api_port": port, **overrides}
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(served), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # uvicorn exposes no event to wait on
            assert not task.done(), "the API did not start"
            await asyncio.sleep(0.05)
        yield served
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
