"""What a soak run is asked for, and the settings it runs its deployment with."""

from __future__ import annotations

from dataclasses import dataclass

from bench.soak.stages import SOAK_STAGES
from driftline.infra.manager import LocalServices
from driftline.settings import PROJECT_ROOT, Settings

FULL_SIZE = 100_000


#: How the stage runners are spread over processes (`--stage-processes`).
LAYOUTS: dict[int, tuple[tuple[str, ...], ...]] = {
    1: (tuple(SOAK_STAGES),),
    2: (("validate", "fetch_forcing", "simulate"), ("postprocess", "notify")),
    5: tuple((name,) for name in SOAK_STAGES),
}


@dataclass(frozen=True)
class SoakConfig:
    missions: int = FULL_SIZE
    rate_per_s: float = 15.0  # the rate of the full run in docs/benchmarks.md
    retention_s: float = 120.0  # every table, and every topic
    segment_s: float = 60.0  # topics roll a segment at least this often, so it can expire
    housekeeping_s: float = 15.0
    sample_s: float = 30.0
    callback_every: int = 10  # one mission in N carries a callback URL
    stage_processes: tuple[tuple[str, ...], ...] = LAYOUTS[2]
    drain_timeout_s: float = 600.0
    private_services: bool = False
    keep: bool = False
    prefill_missions: int = 0  # completed missions in the table before the load starts

    @property
    def processed_events_s(self) -> float:
        # A record stays readable until its whole segment expires: up to retention +
        # segment roll time. Processed ids outlive that, as the policy demands.
        return self.retention_s + self.segment_s

    @property
    def topic_settle_s(self) -> float:
        """When a topic's oldest records are gone at the latest: retention, segment roll,
        and the broker's retention check (log.retention.check.interval.ms, 5 min)."""
        return self.retention_s + self.segment_s + 300.0

    @property
    def table_settle_s(self) -> float:
        return self.processed_events_s + 2 * self.housekeeping_s


def soak_settings(base: Settings, local: LocalServices, database_url: str, run: str) -> Settings:
    return base.model_copy(
        update={
            "kafka_bootstrap_servers": local.kafka_bootstrap_servers,
            "database_url": database_url,
            "s3_endpoint_url": local.minio.endpoint,
            "s3_bucket": f"soak-{run}",
            "topic_prefix": f"soak{run}.",
            "work_dir": PROJECT_ROOT / ".driftline" / "soak" / run / "work",
            "webhook_allow_private": True,  # the receiver listens on loopback
            "rate_limit_write_per_s": 1e6,  # one key sends everything
            "rate_limit_write_burst": 1_000_000,
            "rate_limit_read_per_s": 1e6,
            "rate_limit_read_burst": 1_000_000,
            "metrics_port": None,
        }
    )


def with_retention(settings: Settings, config: SoakConfig) -> Settings:
    minutes = config.retention_s
    return settings.model_copy(
        update={
            "retention_outbox_s": minutes,
            "retention_processed_events_s": config.processed_events_s,
            "retention_idempotency_keys_s": minutes,
            "retention_status_history_s": minutes,
            "retention_webhook_deliveries_s": minutes,
            "retention_topic_internal_s": minutes,
            "retention_topic_public_s": minutes,
            "retention_topic_dlq_s": minutes,
            "housekeeping_interval_s": config.housekeeping_s,
        }
    )
