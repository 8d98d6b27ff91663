"""`driftline infra up | down | status`: the real local services, idempotently.

Kafka, PostgreSQL and MinIO start concurrently; a second `up` finds them running and
returns in well under a second. Everything fetched, built, stored and logged lives
under `settings.infra_dir` (git-ignored).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from driftline.db.migrate import upgrade
from driftline.errors import InfraError, PortTaken
from driftline.infra.kafka import KafkaCluster
from driftline.infra.minio import Minio
from driftline.infra.postgres import Postgres
from driftline.infra.process import ServiceState, describe_port_holder, port_open, read_pid
from driftline.settings import Settings

SERVICES = ("kafka", "postgres", "minio")
#: The Kafka cluster shapes `up --kafka-nodes` makes; each has its own folder and ports.
KAFKA_SHAPES = (1, 3)


@dataclass(frozen=True)
class LocalServices:
    """The three services as configured by `settings`.

    `cache_dir` (fetched Kafka jars, the built MinIO) defaults to `<infra_dir>/cache`; an
    isolated set (`isolated`) shares the default set's cache and nothing else.
    """

    settings: Settings
    kafka_nodes: int = 1
    cache_dir: Path | None = None

    @classmethod
    def isolated(
        cls, settings: Settings, home: Path, port_offset: int, kafka_nodes: int = 1
    ) -> LocalServices:
        """A separate set under `home` on every port + `port_offset` (chaos, fault tests),
        so killing its processes never touches the shared default services."""
        moved = settings.model_copy(
            update={
                "infra_dir": home.resolve(),
                "kafka_port": settings.kafka_port + port_offset,
                "postgres_port": settings.postgres_port + port_offset,
                "minio_port": settings.minio_port + port_offset,
            }
        )
        return cls(moved, kafka_nodes, cache_dir=settings.infra_dir / "cache")

    def _kafka(self, nodes: int) -> KafkaCluster:
        base = self.settings.kafka_port if nodes == 1 else self.settings.kafka_port + 100
        s = self.settings
        return KafkaCluster(s.infra_dir, s.kafka_version, base, nodes, self.cache_dir)

    @property
    def kafka(self) -> KafkaCluster:
        return self._kafka(self.kafka_nodes)

    @property
    def postgres(self) -> Postgres:
        return Postgres(self.settings.infra_dir, self.settings.postgres_port)

    @property
    def minio(self) -> Minio:
        s = self.settings
        return Minio(
            s.infra_dir, s.minio_port, s.s3_access_key, s.s3_secret_key, s.s3_bucket, self.cache_dir
        )

    def client_settings(self, base: Settings | None = None) -> Settings:
        """`base` (default: these settings) pointed at these services, as a process uses them."""
        return (base or self.settings).model_copy(
            update={
                "kafka_bootstrap_servers": self.kafka_bootstrap_servers,
                "topic_replication_factor": min(3, self.kafka_nodes),
                "database_url": self.postgres.database_url,
                "s3_endpoint_url": self.minio.endpoint,
            }
        )

    # -- up / down / status ------------------------------------------------------------

    def up(self, only: Iterable[str] = SERVICES) -> float:
        """Start what is not running, wait for health, migrate, create the bucket.

        Returns the seconds it took.
        """
        started = time.monotonic()
        wanted = set(only)
        self.refuse_taken_ports(wanted)
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

    def refuse_taken_ports(self, wanted: Iterable[str] = SERVICES) -> None:
        """Raise PortTaken when a port a service would listen on is held by a process this
        set did not start (another checkout's services, say), instead of letting the
        service fail to bind."""
        for port, what, setting in self._ports_to_bind(set(wanted)):
            if port_open("127.0.0.1", port, 0.3):
                raise PortTaken(port, what, describe_port_holder(port), setting)

    def _ports_to_bind(self, wanted: set[str]) -> list[tuple[int, str, str]]:
        """(port, service, setting that moves it) of each service in `wanted` not running."""
        s = self.settings
        ports: list[tuple[int, str, str]] = []
        if "kafka" in wanted:
            moved = "DRIFTLINE_KAFKA_PORT (and DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS for clients)"
            for node in self.kafka.nodes:
                if read_pid(node.pid_file) is None:
                    ports.append((node.broker_port, "Kafka", moved))
                    ports.append((node.controller_port, "Kafka's controller", moved))
        if "postgres" in wanted and self.postgres.pid() is None:
            moved = "DRIFTLINE_POSTGRES_PORT (and DRIFTLINE_DATABASE_URL for clients)"
            ports.append((s.postgres_port, "PostgreSQL", moved))
        if "minio" in wanted and read_pid(self.minio.pid_file) is None:
            moved = "DRIFTLINE_MINIO_PORT (and DRIFTLINE_S3_ENDPOINT_URL for clients)"
            ports.append((s.minio_port, "MinIO", moved))
            ports.append((s.minio_port + 1, "MinIO's console", moved))
        return ports

    def _postgres_up(self) -> None:
        postgres = self.postgres
        postgres.start()
        upgrade(postgres.database_url)

    def _minio_up(self) -> None:
        minio = self.minio
        minio.start()
        ensure_bucket(minio.endpoint, self.settings, self.settings.s3_bucket)

    def down(self, only: Iterable[str] = SERVICES, *, every_cluster: bool = False) -> list[str]:
        """Stop what `up` started (by its pid files); returns the names stopped.

        Kafka: this set's cluster shape, or with `every_cluster` every shape `up` may have
        started in this infra folder (`infra down` without `--kafka-nodes`).
        """
        stopped = []
        wanted = set(only)
        clusters = self.kafka_clusters() if every_cluster else [self.kafka]
        for cluster in clusters if "kafka" in wanted else []:
            if cluster.stop():
                stopped.append(cluster.name)
        if "postgres" in wanted and self.postgres.stop():
            stopped.append("postgres")
        if "minio" in wanted and self.minio.stop():
            stopped.append("minio")
        return stopped

    def status(self, *, every_cluster: bool = False) -> list[ServiceState]:
        """This set's services; with `every_cluster`, also any other Kafka shape running."""
        kafka = self.kafka.states()
        if every_cluster:
            for cluster in self.kafka_clusters():
                states = cluster.states()
                if cluster.nodes_count != self.kafka_nodes and any(s.pid for s in states):
                    kafka.extend(states)
        return [*kafka, self.postgres.state(), self.minio.state()]

    def kafka_clusters(self) -> list[KafkaCluster]:
        return [self._kafka(nodes) for nodes in KAFKA_SHAPES]

    @property
    def kafka_bootstrap_servers(self) -> str:
        return self.kafka.bootstrap_servers


def free_port_offset(settings: Settings) -> int:
    """A port offset for an isolated set whose every port is free now (every Kafka shape,
    PostgreSQL, MinIO and its console), picked at random so concurrent sets rarely race."""
    offsets = list(range(1100, 10000, 100))
    random.SystemRandom().shuffle(offsets)
    for offset in offsets:
        ports = [settings.kafka_port + offset + i for i in (0, 1, *range(100, 106))]
        ports += [settings.postgres_port + offset, settings.minio_port + offset]
        ports.append(settings.minio_port + offset + 1)
        if all(p < 65536 and not port_open("127.0.0.1", p, 0.2) for p in ports):
            return offset
    raise InfraError("no free port offset for an isolated set of services")


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
