"""`driftline infra up | down | status`: the real local services, idempotently.

Kafka, PostgreSQL and MinIO start concurrently; a second `up` finds them running and
returns in well under a second. Everything fetched, built, stored and logged lives
under `settings.infra_dir` (git-ignored).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from driftline.db.migrate import upgrade
from driftline.infra.kafka import KafkaCluster
from driftline.infra.minio import Minio
from driftline.infra.postgres import Postgres
from driftline.infra.process import ServiceState
from driftline.settings import Settings

SERVICES = ("kafka", "postgres", "minio")


@dataclass(frozen=True)
class LocalServices:
    """The three services as configured by `settings`."""

    settings: Settings
    kafka_nodes: int = 1

    @property
    def kafka(self) -> KafkaCluster:
        base = self.settings.kafka_port if self.kafka_nodes == 1 else self.settings.kafka_port + 100
        return KafkaCluster(
            self.settings.infra_dir, self.settings.kafka_version, base, self.kafka_nodes
        )

    @property
    def postgres(self) -> Postgres:
        return Postgres(self.settings.infra_dir, self.settings.postgres_port)

    @property
    def minio(self) -> Minio:
        s = self.settings
        return Minio(s.infra_dir, s.minio_port, s.s3_access_key, s.s3_secret_key, s.s3_bucket)

    # -- up / down / status ------------------------------------------------------------

    def up(self, only: Iterable[str] = SERVICES) -> float:
        """Start what is not running, wait for health, migrate, create the bucket.

        Returns the seconds it took.
        """
        started = time.monotonic()
        wanted = set(only)
        steps: list[Callable[[], None]] = []
        if "kafka" in wanted:
            steps.append(self.kafka.start)
        if "postgres" in wanted:
            steps.append(self._postgres_up)
        if "minio" in wanted:
            steps.append(self._minio_up)
        with ThreadPoolExecutor(len(steps) or 1) as pool:
            for future in [pool.submit(step) for step in steps]:
                future.result()
        return time.monotonic() - started

    def _postgres_up(self) -> None:
        postgres = self.postgres
        postgres.start()
        upgrade(postgres.database_url)

    def _minio_up(self) -> None:
        minio = self.minio
        minio.start()
        ensure_bucket(minio.endpoint, self.settings, self.settings.s3_bucket)

    def down(self, only: Iterable[str] = SERVICES) -> list[str]:
        """Stop what `up` started (by its pid files); returns the names stopped."""
        stopped = []
        wanted = set(only)
        if "kafka" in wanted and self.kafka.stop():
            stopped.append(self.kafka.name)
        if "postgres" in wanted and self.postgres.stop():
            stopped.append("postgres")
        if "minio" in wanted and self.minio.stop():
            stopped.append("minio")
        return stopped

    def status(self) -> list[ServiceState]:
        return [*self.kafka.states(), self.postgres.state(), self.minio.state()]

    @property
    def kafka_bootstrap_servers(self) -> str:
        return self.kafka.bootstrap_servers


def s3_client(endpoint: str, settings: Settings) -> object:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=settings.s3_access_key,
        aws_secret_access_key=settings.s3_secret_key,
        region_name=settings.s3_region,
        config=BotoConfig(retries={"max_attempts": 3}, connect_timeout=5, read_timeout=30),
    )


def ensure_bucket(endpoint: str, settings: Settings, bucket: str) -> None:
    client = s3_client(endpoint, settings)
    try:
        client.head_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    except ClientError:
        client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
