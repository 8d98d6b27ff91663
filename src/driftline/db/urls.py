"""The settings name the database by SQLAlchemy URL; this turns it into the other forms
the code needs, so no caller rewrites URL strings by hand."""

from __future__ import annotations

from sqlalchemy.engine import make_url


def with_database(database_url: str, database: str) -> str:
    """The same server and credentials, another database (tests, benchmarks, the soak)."""
    return make_url(database_url).set(database=database).render_as_string(hide_password=False)


def asyncpg_dsn(database_url: str) -> str:
    """The DSN asyncpg connects with (the settings' URL names SQLAlchemy's driver, which
    asyncpg does not accept)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
