"""The engine replaces a pooled connection PostgreSQL has closed, without pre-pinging
every checkout (driftline.db.unit_of_work.create_engine)."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text

from driftline.db.unit_of_work import create_engine
from driftline.db.urls import asyncpg_dsn
from driftline.settings import Settings


async def test_a_pooled_connection_postgresql_closed_is_replaced_without_an_error(
    settings: Settings,
) -> None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            first = await conn.scalar(text("SELECT pg_backend_pid()"))
        # Back in the pool, its backend ends, as every backend does when PostgreSQL restarts.
        killer = await asyncpg.connect(asyncpg_dsn(settings.database_url))
        try:
            assert await killer.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await killer.close()
        await asyncio.sleep(0.5)  # asyncpg reads the server's goodbye
        async with engine.connect() as conn:
            second = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert second != first, "a new connection, and no error for the caller"
    finally:
        await engine.dispose()
