"""Open-loop load through the API, and end-to-end latency from the public topic."""

from __future__ import annotations

import asyncio
import time
import uuid
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from bench.soak.config import SoakConfig
from driftline.contracts.envelope import header_map
from driftline.contracts.topics import topic
from driftline.settings import Settings
from tests.helpers import mission_body


@dataclass
class Timings:
    """Latencies (seconds) with the wall time each was observed at, compactly."""

    at: array[float] = field(default_factory=lambda: array("d"))
    seconds: array[float] = field(default_factory=lambda: array("d"))

    def add(self, at: float, seconds: float) -> None:
        self.at.append(at)
        self.seconds.append(seconds)

    def between(self, start: float, end: float) -> list[float]:
        return [s for a, s in zip(self.at, self.seconds, strict=True) if start <= a < end]

    def count_between(self, start: float, end: float) -> int:
        return sum(1 for a in self.at if start <= a < end)


def p99(values: Sequence[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


@dataclass
class Load:
    """Open-loop POSTs at a fixed rate (a slow API does not slow the arrivals)."""

    base_url: str
    api_key: str
    config: SoakConfig
    callback_url: str
    posts: Timings = field(default_factory=Timings)
    submitted: dict[str, float] = field(default_factory=dict)  # mission id -> POST start
    accepted: int = 0
    errors: int = 0
    done: bool = False

    def body(self, index: int) -> dict[str, Any]:
        extra: dict[str, Any] = {"external_ref": f"SOAK-{index}"}
        if index % self.config.callback_every == 0:
            extra["callback_url"] = self.callback_url
        return mission_body(**extra)

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        headers = {"Authorization": f"Bearer {self.api_key}"}
        gate = asyncio.Semaphore(400)
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=headers, limits=limits, timeout=60
        ) as client:
            start = time.monotonic()
            tasks: set[asyncio.Task[None]] = set()
            try:
                for index in range(self.config.missions):
                    delay = start + index / self.config.rate_per_s - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await gate.acquire()
                    task = asyncio.create_task(self._post(client, index))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    task.add_done_callback(lambda _: gate.release())
                await asyncio.gather(*tasks)
            finally:  # stopped early: no POST may outlive the client
                for task in list(tasks):
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        self.done = True

    async def _post(self, client: httpx.AsyncClient, index: int) -> None:
        key = f"soak-{index}-{uuid.uuid4().hex[:8]}"
        body = self.body(index)
        for _attempt in range(120):  # a retried POST keeps its Idempotency-Key
            started = time.time()
            try:
                response = await client.post(
                    "/v1/missions", json=body, headers={"Idempotency-Key": key}
                )
            except httpx.HTTPError:
                self.errors += 1
                await asyncio.sleep(1)
                continue
            finished = time.time()
            if response.status_code == 202:
                self.posts.add(finished, finished - started)
                self.submitted[response.json()["id"]] = started
                self.accepted += 1
                return
            self.errors += 1
            await asyncio.sleep(1)


@dataclass
class Completions:
    """Reads the public `completed` topic: end-to-end latency per mission."""

    settings: Settings
    load: Load
    e2e: Timings = field(default_factory=Timings)
    completed: int = 0
    early: dict[str, float] = field(default_factory=dict)  # seen before its POST answered

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            topic(self.settings.topic_prefix, "missions.completed"),
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=f"soak-reader-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        seen: set[str] = set()  # public events may repeat (same ce_id); count each once
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                now = time.time()
                for records in batches.values():
                    for record in records:
                        mission = header_map(record.headers).get("ce_subject", "")
                        if mission not in seen:
                            seen.add(mission)
                            self._arrived(mission, now)
                self._match_early()
        finally:
            await consumer.stop()

    def _arrived(self, mission: str, now: float) -> None:
        started = self.load.submitted.pop(mission, None)
        if started is None:
            self.early[mission] = now
            return
        self.e2e.add(now, now - started)
        self.completed += 1

    def _match_early(self) -> None:
        for mission, at in list(self.early.items()):
            started = self.load.submitted.pop(mission, None)
            if started is not None:
                del self.early[mission]
                self.e2e.add(at, at - started)
                self.completed += 1
