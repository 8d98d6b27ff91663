"""A whole Driftline deployment inside the test's event loop, on the real services.

API (uvicorn on a free loopback port), outbox relay and every stage runner run as tasks;
stages can be swapped for purpose-built ones (fault injection) by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.helpers import mission_body
from workers import STAGE_REGISTRY

__all__ = ["mission_body"]

from driftline.api.app import create_app
from driftline.auth import create_api_key
from driftline.bootstrap import stage_dependencies
from driftline.contracts.envelope import header_map
from driftline.contracts.topics import topic
from driftline.db.unit_of_work import Database
from driftline.runtime.relay import OutboxRelay
from driftline.runtime.runner import StageRunner
from driftline.runtime.stage import Stage
from driftline.settings import Settings

FINAL = {"completed", "failed", "cancelled"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pipeline:
    """Handles to a running deployment."""

    settings: Settings
    database: Database
    base_url: str
    api_key: str
    tenant: str
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    stops: dict[str, asyncio.Event] = field(default_factory=dict)
    runners: dict[str, StageRunner] = field(default_factory=dict)
    dependencies: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=30)

    async def post_mission(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        async with self.client() as client:
            return await client.post("/v1/missions", json=body, headers=headers)

    async def submit(self, body: dict[str, Any]) -> str:
        response = await self.post_mission(body)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    async def mission(self, mission_id: str) -> dict[str, Any]:
        async with self.client() as client:
            response = await client.get(f"/v1/missions/{mission_id}")
            response.raise_for_status()
            return dict(response.json())

    async def wait_final(self, mission_id: str, timeout_s: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            mission = await self.mission(mission_id)
            if mission["status"] in FINAL:
                return mission
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"mission {mission_id} still {mission['status']} "
                    f"at {mission['stage']} after {timeout_s} s"
                )
            await asyncio.sleep(0.25)

    def topic(self, suffix: str) -> str:
        return topic(self.settings.topic_prefix, suffix)

    async def stop_task(self, name: str) -> None:
        self.stops[name].set()
        await asyncio.wait_for(self.tasks[name], 60)

    def start_runner(self, stage: Stage[Any]) -> None:
        runner = StageRunner(
            stage, self.settings, self.database, self.dependencies, drain_timeout_s=5
        )
        stop = asyncio.Event()
        self.runners[stage.name] = runner
        self.stops[stage.name] = stop
        self.tasks[stage.name] = asyncio.create_task(runner.run(stop))


@asynccontextmanager
async def running_pipeline(
    settings: Settings,
    *,
    simulation_pool: Any,
    stages: dict[str, Stage[Any]] | None = None,
    run_stages: tuple[str, ...] = tuple(STAGE_REGISTRY),
    tenant: str = "jrcc-test",
    relay: bool = True,
) -> AsyncIterator[Pipeline]:
    """Start API, relay and the stage runners; stop them all afterwards."""
    port = free_port()
    settings = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    database = Database(settings)
    async with database.unit_of_work() as uow:
        api_key = await create_api_key(uow, tenant)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    pipeline = Pipeline(settings, database, settings.public_base_url, api_key, tenant)
    api_task = asyncio.create_task(server.serve())
    if relay:
        relay_stop = asyncio.Event()
        pipeline.stops["relay"] = relay_stop
        pipeline.tasks["relay"] = asyncio.create_task(
            OutboxRelay(settings, database).run(relay_stop)
        )
    chosen = {**STAGE_REGISTRY, **(stages or {})}
    try:
        async with stage_dependencies(
            settings, database, list(chosen.values()), {"pool": simulation_pool}
        ) as dependencies:
            pipeline.dependencies = dependencies
            for name in run_stages:
                pipeline.start_runner(chosen[name])
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes no event
                await asyncio.sleep(0.05)
            yield pipeline
            for stop in pipeline.stops.values():
                stop.set()
            await asyncio.wait_for(
                asyncio.gather(*pipeline.tasks.values(), return_exceptions=True), 60
            )
    finally:
        for stop in pipeline.stops.values():
            stop.set()
        for task in pipeline.tasks.values():
            task.cancel()
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(api_task, 10)
        await database.close()


async def read_topic(
    settings: Settings,
    topic_name: str,
    *,
    until: Callable[[list[Any]], bool],
    timeout_s: float = 120,
    group_id: str | None = None,
) -> list[Any]:
    """Read `topic_name` from the beginning (own consumer group) until `until(records)`."""
    consumer = AIOKafkaConsumer(
        topic_name,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id or f"test-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not until(records):
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic_name}: condition not met, got {len(records)} records")
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                records.extend(recs)
    finally:
        await consumer.stop()
    return records


def records_for(records: list[Any], mission_id: str) -> list[Any]:
    return [r for r in records if header_map(r.headers).get("ce_subject") == mission_id]


async def produce_raw(
    settings: Settings,
    topic_name: str,
    value: bytes | None,
    *,
    key: bytes | None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(topic_name, value, key=key, headers=headers or [])
    finally:
        await producer.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.25)


def settings_env(settings: Settings) -> dict[str, str]:
    """`settings` as DRIFTLINE_* variables, for a worker started as its own process."""
    import json
    import os

    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            env.pop(f"DRIFTLINE_{name.upper()}", None)
            continue
        env[f"DRIFTLINE_{name.upper()}"] = (
            json.dumps(value) if isinstance(value, list | dict) else str(value)
        )
    return env


async def outbox_count(p: Pipeline, mission_id: str, suffix: str) -> int:
    """How many events of `suffix` topic the pipeline emitted for `mission_id`."""
    async with p.database.unit_of_work() as uow:
        return await uow.outbox.count(key=mission_id, topic=p.topic(suffix))


HAPPY_PATH = ["accepted", "validated", "forcing_ready", "simulated", "results_ready", "completed"]


async def published_statuses(p: Pipeline, mission_id: str) -> list[str]:
    """The statuses of `mission_id` on the public status topic, in order, up to completion."""
    import json

    records = await read_topic(
        p.settings,
        p.topic("missions.status"),
        until=lambda recs: any(
            json.loads(r.value)["status"] == "completed" for r in records_for(recs, mission_id)
        ),
    )
    return [json.loads(r.value)["status"] for r in records_for(records, mission_id)]


async def run_cli(settings: Settings, *args: str, timeout_s: float = 120) -> str:
    """Run `driftline ARGS` as an operator would (own process, settings from the env)."""
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "driftline.cli.main",
        *args,
        env={**settings_env(settings), "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"driftline {' '.join(args)} failed:\n{text}"
    return text
