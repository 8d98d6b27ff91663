"""The one settings object: built once at process start and passed down.

Every value can be set with an environment variable ``DRIFTLINE_<NAME>`` (or in a
``.env`` file); see ``.env.example`` for the documented list.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    """Runtime configuration of every Driftline process."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLINE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
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
    console_tile_url: str | None = Field(
        None,
        description="Raster tiles under the console's map, e.g. "
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png (deployments with internet); unset: "
        "the offline GSHHG coastline only.",
    )
    console_tile_attribution: str = Field(
        "", description="Attribution shown for `console_tile_url` (required by most providers)."
    )

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
    outage_poll_max_s: float = Field(
        2.0,
        description="Longest pause between two tries while waiting out an outage: work resumes "
        "at most this long after the dependency is back.",
    )
    kafka_session_timeout_s: float = Field(
        6.0,
        description="How long the consumer group waits for a silent (crashed) worker before "
        "its partitions go to another: the pause a SIGKILLed worker causes. 6 s is the least "
        "a stock broker accepts (group.min.session.timeout.ms).",
    )
    kafka_group_instance_id: str | None = Field(
        None,
        description="Static group membership (KIP-345) for this worker process, unique per "
        "stage: restarted within the session timeout, it takes its partitions back without "
        "a rebalance. A stopped static member does not leave its group: its partitions wait "
        "the session timeout unless it returns. Usually set by `driftline worker --instance`.",
    )
    max_particles: int = Field(
        50_000, description="Most particles a mission may ask for, unless its tenant has a limit."
    )
    tenant_max_particles: dict[str, int] = Field(
        default_factory=dict,
        description='Per-tenant particle limits overriding max_particles, e.g. {"jrcc": 200000}.',
    )
    shard_particles: int = Field(
        50_000,
        ge=0,
        description="A mission with more particles is split into shards of at most this many, "
        "simulated in parallel by whichever simulate workers are free and merged by "
        "postprocess; 0 never splits.",
    )
    shard_topic_partitions: int = Field(
        12,
        ge=1,
        description="Partitions of the simulate stage's input topic (forcing.ready): shards go "
        "to consecutive partitions, so with a worker count dividing this number they spread "
        "evenly over the simulate workers.",
    )
    max_duration_hours: int = 240
    simulation_workers: int = 1
    webhook_allow_private: bool = Field(
        False,
        description="Let callbacks reach any unicast address (private, loopback, link-local); "
        "for development only.",
    )
    webhook_allowlist: list[str] = Field(
        default_factory=list,
        description="Hosts or CIDRs a callback may resolve to although not globally routable.",
    )
    webhook_timeout_s: float = Field(10.0, description="Upper bound on one delivery attempt.")
    webhook_retry_schedule_s: list[float] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0],
        description="Delay before each attempt of a webhook delivery, the first counted from "
        "the mission's completion, each next one from the attempt before (Standard Webhooks: "
        "immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h); one attempt per entry.",
    )
    webhook_retry_after_cap_s: float = Field(
        3600.0,
        description="Longest wait a receiver's Retry-After may impose before the next attempt.",
    )
    webhook_poll_interval_s: float = Field(
        1.0, description="How often the webhook dispatcher looks for due deliveries."
    )
    webhook_batch_size: int = Field(
        20, description="Deliveries one dispatcher attempts at the same time."
    )
    work_dir: Path = PROJECT_ROOT / ".driftline" / "work"

    # Retention (docs/operations.md explains why each bound is safe)
    retention_outbox_s: float = Field(3600, description="Published outbox rows are deleted.")
    retention_processed_events_s: float = Field(
        35 * 86400,
        description="Processed-event ids; must cover input and dead-letter topic retention.",
    )
    retention_idempotency_keys_s: float = Field(86400, description="Idempotency-Key answers.")
    retention_status_history_s: float = Field(90 * 86400, description="Status history rows.")
    retention_webhook_deliveries_s: float = Field(90 * 86400, description="Webhook records.")
    retention_topic_internal_s: float = Field(3 * 86400, description="Stage input topics.")
    retention_topic_public_s: float = Field(14 * 86400, description="Public topics.")
    retention_topic_dlq_s: float = Field(30 * 86400, description="Dead-letter topics.")
    retention_artifacts_days: int | None = Field(
        None, description="Mission artifacts (S3 lifecycle); unset: kept forever."
    )
    retention_forcing_subsets_days: int = Field(30, description="Shared forcing subsets.")
    housekeeping_interval_s: float = Field(60, description="How often stale rows are pruned.")
    housekeeping_batch: int = Field(1000, description="Rows deleted per statement (short locks).")

    # Observability
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    metrics_port: int | None = Field(
        None,
        description="Port of a worker's or the relay's /metrics, /healthz and /readyz "
        "(the API serves them on its own port); unset: not served.",
    )
    otlp_endpoint: str | None = Field(
        None,
        validation_alias=AliasChoices("DRIFTLINE_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="OTLP/HTTP collector for traces (e.g. http://127.0.0.1:4318); unset: "
        "spans are made (trace ids in logs and events) but not exported.",
    )

    # API abuse limits (docs/security.md). Rate limits are per API key and per API
    # process: with N API processes behind a balancer a key gets up to N times these.
    api_max_body_bytes: int = Field(
        262_144, ge=1024, description="Largest request body accepted (413 above it)."
    )
    rate_limit_write_per_s: float = Field(
        10.0, gt=0, description="Sustained POST/DELETE requests per second per API key."
    )
    rate_limit_write_burst: int = Field(20, ge=1, description="POST/DELETE burst per API key.")
    rate_limit_read_per_s: float = Field(
        50.0, gt=0, description="Sustained GET requests per second per API key."
    )
    rate_limit_read_burst: int = Field(100, ge=1, description="GET burst per API key.")
    sse_max_streams_per_key: int = Field(
        5, ge=1, description="Concurrent status streams per API key (429 above it)."
    )
    sse_idle_timeout_s: float = Field(
        300.0,
        gt=0,
        description="A status stream with no change for this long ends "
        "(the client reconnects with Last-Event-ID).",
    )
    sse_keepalive_s: float = Field(15.0, gt=0, description="Comment line sent to idle streams.")
    mission_earliest_time: datetime = Field(
        datetime(1950, 1, 1, tzinfo=UTC),
        description="A mission time before this is refused (422).",
    )
    mission_max_future_days: float = Field(
        30.0, ge=0, description="A mission time later than now plus this is refused (422)."
    )


def particle_limit(settings: Settings, tenant: str) -> int:
    """The most particles `tenant` may ask for."""
    return settings.tenant_max_particles.get(tenant, settings.max_particles)


def load_settings(**overrides: object) -> Settings:
    """Build the settings from the environment, with explicit overrides for tests."""
    return Settings(**overrides)  # type: ignore[arg-type]
