"""The run's deployment: database, topics, bucket and processes, and their clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from bench.processes import Child
from bench.soak.config import SoakConfig
from driftline.contracts.topics import all_topics
from driftline.db.urls import asyncpg_dsn
from driftline.infra.manager import LocalServices, free_port_offset, s3_client
from driftline.infra.process import read_pid
from driftline.retention import RetentionPolicy
from driftline.runtime.kafka import admin_client, create_topics, delete_topics, retention_ms
from driftline.settings import PROJECT_ROOT, Settings
from tests.helpers import drop_database, mission_body
from tests.pipeline import settings_env


async def prepare_topics(settings: Settings, config: SoakConfig) -> None:
    """Create the topics, then give each its policy retention and a short segment roll.

    AlterConfigs replaces a topic's whole set of overrides, so both go in one request.
    """
    await create_topics(settings)
    policy = RetentionPolicy.from_settings(settings)
    segment_ms = str(int(config.segment_s * 1000))
    resources = [
        ConfigResource(
            ConfigResourceType.TOPIC,
            name,
            {"retention.ms": str(retention_ms(policy.for_topic(name))), "segment.ms": segment_ms},
        )
        for name in all_topics(settings.topic_prefix)
    ]
    async with admin_client(settings) as admin:
        await admin.alter_configs(resources)


def service_pids(local: LocalServices) -> dict[str, int]:
    found = {
        "postgres": local.postgres.pid(),
        "minio": read_pid(local.minio.pid_file),
        "kafka": read_pid(local.kafka.nodes[0].pid_file),
    }
    return {name: pid for name, pid in found.items() if pid is not None}


def deployment(settings: Settings, config: SoakConfig, logs: Path, port: int) -> list[Child]:
    # This checkout's code first, whatever the virtualenv's editable install points at.
    path = [str(PROJECT_ROOT / "src"), str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**settings_env(settings), "PYTHONPATH": os.pathsep.join(filter(None, path))}
    cli = [sys.executable, "-m", "driftline.cli.main"]
    children = [
        Child(
            "api", [*cli, "api", "--host", "127.0.0.1", "--port", str(port)], env, logs / "api.log"
        ),
        Child("relay", [*cli, "relay"], env, logs / "relay.log"),
    ]
    for index, names in enumerate(config.stage_processes):
        argv = [sys.executable, "-m", "bench.soak", "--stages-process", ",".join(names)]
        children.append(Child(f"stages{index + 1}", argv, env, logs / f"stages{index + 1}.log"))
    return children


async def wait_ready(children: Sequence[Child], base_url: str, stage_count: int) -> None:
    """API answering /healthz, the relay leading, every stage runner started."""
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        while True:
            for child in children:
                if not child.alive():
                    raise SystemExit(f"{child.name} exited:\n{child.log_text()[-3000:]}")
            relay = "relay.leader" in children[1].log_text()
            started = sum(c.log_text().count("runner.started") for c in children[2:])
            if relay and started >= stage_count:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/healthz")).status_code == 200:
                        return
            if time.monotonic() > deadline:
                raise SystemExit("the deployment did not become ready in 120 s")
            await asyncio.sleep(0.5)


async def prefill(database_url: str, count: int) -> None:
    """`count` completed missions of the soak's own shape, as a long-running deployment
    holds them (missions are kept): does latency depend on how many there are?"""
    if count <= 0:
        return
    request = json.dumps(mission_body(external_ref="SOAK-PREFILL"))
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(
            """
            INSERT INTO missions (id, tenant, name, external_ref, request, status, stage,
                                  progress, created_at, updated_at, completed_at)
            SELECT gen_random_uuid(), 'soak', 'prefill', 'SOAK-PREFILL-' || n, $1::jsonb,
                   'completed', 'notify', 1.0, now() - interval '1 day',
                   now() - interval '1 day', now() - interval '1 day'
            FROM generate_series(1, $2) AS n
            """,
            request,
            count,
        )
        await conn.execute("VACUUM ANALYZE missions")
    finally:
        await conn.close()
    print(f"prefilled {count:,} completed missions", flush=True)


async def cleanup(settings: Settings, admin_url: str, database: str) -> None:
    """Drop what the run made: database, topics, bucket."""
    await drop_database(asyncpg_dsn(admin_url), database)
    await delete_topics(settings)
    await asyncio.to_thread(_empty_bucket, settings)


def _empty_bucket(settings: Settings) -> None:
    client: Any = s3_client(settings.s3_endpoint_url or "", settings)
    bucket = settings.s3_bucket
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


def services(base: Settings, config: SoakConfig, run_id: str) -> LocalServices:
    """The shared local services, or (`--private-services`) a set of this run's own on
    free ports, which no other engineer's outage test can stop mid-run."""
    if not config.private_services:
        return LocalServices(base)
    home = PROJECT_ROOT / ".driftline" / "soak" / run_id / "services"
    return LocalServices.isolated(base, home, free_port_offset(base))
