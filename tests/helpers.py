"""Small helpers shared by the test layers."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aioboto3
import asyncpg

from driftline.contracts.events import Centroid, MissionSummary
from driftline.settings import Settings


def unique_id() -> str:
    """A short id that never collides between tests (names of topics, databases, buckets)."""
    return uuid.uuid4().hex[:12]


def mission_body(**changes: Any) -> dict[str, Any]:
    """A mission inside the sample forcing (open water west of Norway)."""
    body: dict[str, Any] = {
        "name": "Life raft adrift",
        "object_type": "LIFE-RAFT-DB-10",
        "last_known_position": {
            "lat": 60.0,
            "lon": 4.0,
            "time": "2024-01-01T06:00:00Z",
            "radius_m": 1000,
        },
        "duration_hours": 12,
        "particles": 500,
        "external_ref": "TEST-1",
    }
    body.update(changes)
    return body


def sample_summary() -> MissionSummary:
    """A small valid summary for events and results built by hand in tests."""
    return MissionSummary(
        particles_total=10,
        particles_active=10,
        particles_stranded=0,
        fraction_afloat=1.0,
        centroid=Centroid(lat=60.0, lon=4.0),
        area_km2={"50": 1.0, "90": 3.0},
    )


def s3_client(settings: Settings) -> Any:
    """An aioboto3 S3 client on the test's MinIO (use with `async with`)."""
    return aioboto3.Session().client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key,
        region_name=settings.s3_region,
    )


async def create_database(admin_url: str, name: str) -> str:
    """A new database `name` beside `admin_url`'s, migrated to head; returns its URL."""
    from driftline.db.migrate import upgrade_async
    from driftline.db.urls import asyncpg_dsn, with_database

    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    url = with_database(admin_url, name)
    await upgrade_async(url)
    return url


async def drop_database(dsn: str, name: str, attempts: int = 30) -> None:
    """Drop `name` (connecting with `dsn`), waiting out an autovacuum worker in it: FORCE
    cannot end a superuser's backend, and says InsufficientPrivilegeError instead."""
    conn = await asyncpg.connect(dsn)
    try:
        for attempt in range(attempts):
            try:
                await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                return
            except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(1)
    finally:
        await conn.close()
