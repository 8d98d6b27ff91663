"""How long each store keeps what, and why the bounds are safe together.

One policy, from settings, read by the housekeeping loop (tables), `driftline topics
create|check` (topic `retention.ms`), `driftline buckets configure` (S3 lifecycle) and the
API (results of expired missions answer 410). `check()` refuses settings where a record
could still be delivered or replayed after its processed-event id was pruned: that
record would apply its effect a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from driftline.contracts.topics import DLQ_SUFFIX, PUBLIC_TOPICS
from driftline.errors import ConfigurationError
from driftline.settings import Settings


@dataclass(frozen=True)
class RetentionPolicy:
    outbox_published: timedelta
    processed_events: timedelta
    idempotency_keys: timedelta
    status_history: timedelta
    webhook_deliveries: timedelta
    internal_topics: timedelta
    public_topics: timedelta
    dead_letter_topics: timedelta
    artifacts: timedelta | None  # None: kept forever
    forcing_subsets: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        days = settings.retention_artifacts_days
        return cls(
            outbox_published=timedelta(seconds=settings.retention_outbox_s),
            processed_events=timedelta(seconds=settings.retention_processed_events_s),
            idempotency_keys=timedelta(seconds=settings.retention_idempotency_keys_s),
            status_history=timedelta(seconds=settings.retention_status_history_s),
            webhook_deliveries=timedelta(seconds=settings.retention_webhook_deliveries_s),
            internal_topics=timedelta(seconds=settings.retention_topic_internal_s),
            public_topics=timedelta(seconds=settings.retention_topic_public_s),
            dead_letter_topics=timedelta(seconds=settings.retention_topic_dlq_s),
            artifacts=timedelta(days=days) if days is not None else None,
            forcing_subsets=timedelta(days=settings.retention_forcing_subsets_days),
        )

    def check(self) -> None:
        """Refuse settings under which a replay could re-apply an effect."""
        longest = max(self.internal_topics, self.dead_letter_topics)
        if self.processed_events < longest:
            raise ConfigurationError(
                f"processed-event ids are kept {_human(self.processed_events)} but a record "
                f"carrying one can still be delivered or replayed for {_human(longest)} "
                "(input and dead-letter topic retention): a replay could apply its effect "
                "twice. Raise DRIFTLINE_RETENTION_PROCESSED_EVENTS_S or lower the topic "
                "retention."
            )

    def for_topic(self, name: str) -> timedelta:
        """Retention of a topic by kind: dead-letter, public or internal."""
        if name.endswith(DLQ_SUFFIX):
            return self.dead_letter_topics
        if any(name.endswith(suffix) for suffix in PUBLIC_TOPICS):
            return self.public_topics
        return self.internal_topics


def _human(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds >= 86400:
        return f"{seconds / 86400:g} days"
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds:g} s"
