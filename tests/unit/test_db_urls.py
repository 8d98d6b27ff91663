"""The database URL of the settings, turned into asyncpg's DSN and other databases."""

from urllib.parse import quote, unquote, urlsplit

import pytest

from driftline.db.urls import asyncpg_dsn, with_database

URL = "postgresql+asyncpg://driftline:s3cret@127.0.0.1:55432/driftline"


def test_asyncpg_dsn_drops_the_sqlalchemy_driver_and_keeps_the_credentials() -> None:
    assert asyncpg_dsn(URL) == "postgresql://driftline:s3cret@127.0.0.1:55432/driftline"


def test_asyncpg_dsn_for_another_database_of_the_same_server() -> None:
    assert (
        asyncpg_dsn(with_database(URL, "soak_1"))
        == "postgresql://driftline:s3cret@127.0.0.1:55432/soak_1"
    )


def test_with_database_keeps_the_driver() -> None:
    assert with_database(URL, "t_2") == "postgresql+asyncpg://driftline:s3cret@127.0.0.1:55432/t_2"


@pytest.mark.parametrize("password", ["p@ss/word", "a:b%c", "x?y#z"])
def test_a_password_with_url_characters_survives(password: str) -> None:
    """A hand-written string replacement would pass these through; the DSN must stay
    parseable with the same password."""
    url = f"postgresql+asyncpg://driftline:{quote(password, safe='')}@127.0.0.1:5432/d"
    parts = urlsplit(asyncpg_dsn(with_database(url, "e")))
    assert parts.scheme == "postgresql"
    assert unquote(parts.password or "") == password
    assert (parts.hostname, parts.port, parts.path) == ("127.0.0.1", 5432, "/e")
