"""Test harness: the real services once per session, and a fully isolated `settings` per test.

Services: testcontainers when a Docker engine answers, otherwise `driftline infra up`
(Kafka from Maven Central jars, PostgreSQL from Debian, MinIO built with Go). No test is
ever skipped for a missing service: the fixture brings it up.

Isolation per test: its own topic prefix (and so its own consumer groups), its own
PostgreSQL database cloned from a migrated template, its own S3 bucket and work folders.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from driftline.db.urls import asyncpg_dsn, with_database
from driftline.settings import Settings, load_settings
from tests.helpers import drop_database, unique_id

#: One template per pytest process, so sessions running side by side never drop each other's.
TEMPLATE_DB = f"driftline_test_template_{os.getpid()}"


@dataclass(frozen=True)
class ServiceEndpoints:
    kafka_bootstrap: str
    database_url: str  # the admin database; tests get clones
    s3_endpoint_url: str
    s3_access_key: str
    s3_secret_key: str
    via_docker: bool = False
    containers: dict[str, Any] = field(default_factory=dict)


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def services(base_settings: Settings) -> Iterator[ServiceEndpoints]:
    if docker_answers():
        yield from _containers(base_settings)
        return
    from driftline.infra.manager import LocalServices

    local = LocalServices(base_settings)
    local.up()
    yield ServiceEndpoints(
        kafka_bootstrap=local.kafka_bootstrap_servers,
        database_url=local.postgres.database_url,
        s3_endpoint_url=local.minio.endpoint,
        s3_access_key=base_settings.s3_access_key,
        s3_secret_key=base_settings.s3_secret_key,
    )
    # Left running: the next session (or `make demo`) reuses them; `make infra-down` stops.


def _containers(base: Settings) -> Iterator[ServiceEndpoints]:
    """The same three services as docker-compose.test.yml, through testcontainers."""
    from testcontainers.kafka import KafkaContainer
    from testcontainers.minio import MinioContainer
    from testcontainers.postgres import PostgresContainer

    from driftline.db.migrate import upgrade

    with (
        KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka,
        PostgresContainer(
            "postgres:15",
            username="driftline",
            password="driftline",
            dbname="driftline",
            driver="asyncpg",
        ) as postgres,
        MinioContainer(
            "minio/minio:latest", access_key=base.s3_access_key, secret_key=base.s3_secret_key
        ) as minio,
    ):
        url = postgres.get_connection_url()
        upgrade(url)
        config = minio.get_config()
        yield ServiceEndpoints(
            kafka_bootstrap=kafka.get_bootstrap_server(),
            database_url=url,
            s3_endpoint_url=f"http://{config['endpoint']}",
            s3_access_key=base.s3_access_key,
            s3_secret_key=base.s3_secret_key,
            via_docker=True,
            containers={"kafka": kafka, "postgres": postgres, "minio": minio},
        )


class ServiceControl:
    """Stop and start one service under a running test (outage tests).

    Locally through the infra script (a real stop: connections drop); with Docker the
    container is paused, since a restarted container may get other host ports.
    """

    def __init__(self, settings: Settings, containers: dict[str, Any]) -> None:
        self._settings = settings
        self._containers = containers

    def _docker(self, verb: str, name: str) -> None:
        container_id = self._containers[name].get_wrapped_container().id
        subprocess.run(["docker", verb, container_id], check=True)

    def stop(self, name: str) -> None:
        if self._containers:
            self._docker("pause", name)
            return
        from driftline.infra.manager import LocalServices

        LocalServices(self._settings).down([name])

    def start(self, name: str) -> None:
        if self._containers:
            self._docker("unpause", name)
            return
        from driftline.infra.manager import LocalServices

        LocalServices(self._settings).up([name])


@pytest.fixture(scope="session")
def service_control(services: ServiceEndpoints, base_settings: Settings) -> ServiceControl:
    return ServiceControl(base_settings, services.containers)


@pytest.fixture(scope="session")
async def template_database(services: ServiceEndpoints) -> AsyncIterator[str]:
    """A migrated database that each test's database is cloned from (fast)."""
    from driftline.db.migrate import upgrade_async

    async def drop() -> None:
        await drop_database(asyncpg_dsn(services.database_url), TEMPLATE_DB)

    await drop()
    conn = await asyncpg.connect(asyncpg_dsn(services.database_url))
    try:
        await conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    finally:
        await conn.close()
    await upgrade_async(with_database(services.database_url, TEMPLATE_DB))
    yield TEMPLATE_DB
    await drop()


@pytest.fixture
async def settings(
    services: ServiceEndpoints, template_database: str, base_settings: Settings, tmp_path: Path
) -> AsyncIterator[Settings]:
    """Settings of one test: own topic prefix, database, bucket and folders."""
    from driftline.infra.manager import ensure_bucket

    test_id = unique_id()
    database = f"t_{test_id}"
    admin = await asyncpg.connect(asyncpg_dsn(services.database_url))
    try:
        await admin.execute(f"CREATE DATABASE {database} TEMPLATE {template_database}")
    finally:
        await admin.close()
    bucket = f"t-{test_id}"
    isolated = base_settings.model_copy(
        update={
            "kafka_bootstrap_servers": services.kafka_bootstrap,
            "topic_prefix": f"t{test_id}.",
            "database_url": with_database(services.database_url, database),
            "s3_endpoint_url": services.s3_endpoint_url,
            "s3_bucket": bucket,
            "artifact_dir": tmp_path / "artifacts",
            "work_dir": tmp_path / "work",
            "retry_backoff_s": 0.2,
            "retry_backoff_max_s": 2.0,
        }
    )
    ensure_bucket(services.s3_endpoint_url, isolated, bucket)
    yield isolated
    await drop_database(asyncpg_dsn(services.database_url), database)
    await _delete_test_topics(isolated)


async def _delete_test_topics(settings: Settings) -> None:
    """Drop the test's topics: thousands of leftover partition folders slow Kafka's start."""
    from driftline.errors import BrokerUnavailable
    from driftline.runtime.kafka import delete_topics

    try:
        await delete_topics(settings)
    except BrokerUnavailable as exc:  # a test that left Kafka down; the next start copes
        warnings.warn(f"test topics {settings.topic_prefix}* not deleted: {exc}", stacklevel=1)
