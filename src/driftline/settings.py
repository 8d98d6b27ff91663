"""The one settings object: built once at process start and passed down.

Every value can be set with an environment variable ``DRIFTLINE_<NAME>`` (or in a
``.env`` file); see ``.env.example`` for the documented list.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Runtime configuration of every Driftline process."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLINE_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "driftline."
    topic_partitions: int = 3
    topic_replication_factor: int = 1
    kafka_request_timeout_s: float = Field(10.0, description="Upper bound on every Kafka call.")

    # PostgreSQL
    database_url: str = "postgresql+asyncpg://driftline:driftline@127.0.0.1:55432/driftline"

    # Artifacts: S3 when an endpoint is set, else a local directory (the embedded default).
    s3_endpoint_url: str | None = None
    s3_bucket: str = "driftline-results"
    s3_access_key: str = "driftline"
    s3_secret_key: str = "driftline-secret"
    s3_region: str = "us-east-1"
    artifact_dir: Path = PROJECT_ROOT / ".driftline" / "artifacts"

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"

    # Local services (driftline infra)
    infra_dir: Path = PROJECT_ROOT / ".driftline"
    kafka_version: str = "4.1.1"
    kafka_port: int = 9092
    postgres_port: int = 55432
    minio_port: int = 9000

    # Pipeline behaviour
    forcing_catalog: Path | None = None
    max_attempts: int = 4
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 10.0
    outage_budget_s: float = Field(
        900.0,
        description="How long a record waits out an outage of PostgreSQL, Kafka, the object "
        "store or a forcing server (without spending its attempts) before it is dead-lettered.",
    )
    max_particles: int = 50_000
    max_duration_hours: int = 240
    simulation_workers: int = 1
    webhook_allow_private: bool = False
    webhook_max_attempts: int = 5
    webhook_timeout_s: float = 10.0
    webhook_allowlist: list[str] = Field(
        default_factory=list,
        description="Hosts or CIDRs a callback may resolve to even if private/loopback.",
    )
    work_dir: Path = PROJECT_ROOT / ".driftline" / "work"


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides for tests."""
    return Settings(**overrides)  # type: ignore[arg-type]
