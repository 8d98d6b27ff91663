"""Run alembic migrations from code (used by `driftline infra up`, the API prestart and tests)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from alembic import command
from alembic.config import Config

from driftline.settings import PROJECT_ROOT


def _config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def _in_thread(fn: object, *args: object) -> None:
    # env.py calls asyncio.run(); a fresh thread keeps that legal inside a running loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(fn, *args).result()  # type: ignore[arg-type]


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at ``database_url`` to ``revision``."""
    _in_thread(command.upgrade, _config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Take the database at ``database_url`` down to ``revision``."""
    _in_thread(command.downgrade, _config(database_url), revision)


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """`upgrade` for async callers."""
    await asyncio.to_thread(upgrade, database_url, revision)
