"""Prometheus metrics shared by the API, the relay and the stage runners."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "driftline_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
MISSIONS_ACCEPTED = Counter("driftline_missions_accepted_total", "Missions accepted (202)")
STAGE_LATENCY = Histogram(
    "driftline_stage_seconds",
    "Time a stage spends on one event, retries excluded",
    ["stage", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
STAGE_RETRIES = Counter("driftline_stage_retries_total", "Transient failures retried", ["stage"])
DEAD_LETTERS = Counter("driftline_dead_letters_total", "Records sent to a DLQ", ["stage"])
MISSIONS_HELD = Counter(
    "driftline_missions_held_total", "Missions held after a record was dead-lettered", ["stage"]
)
MISSIONS_FAILED = Counter("driftline_missions_failed_total", "Missions failed", ["stage", "reason"])
OUTBOX_PUBLISHED = Counter("driftline_outbox_published_total", "Outbox rows published")
OUTBOX_BACKLOG = Gauge("driftline_outbox_backlog", "Outbox rows not yet published")
FORCING_SUBSETS_FETCHED = Counter(
    "driftline_forcing_subsets_fetched_total", "Forcing subsets fetched and stored", ["source"]
)
RECORDS_IN_FLIGHT = Gauge(
    "driftline_stage_records_in_flight", "Records dispatched and not yet finished", ["stage"]
)
OUTAGE_PAUSES = Counter(
    "driftline_stage_outage_pauses_total",
    "Waits on an unavailable dependency (attempts not spent)",
    ["stage", "dependency"],
)
DEPENDENCY_UP = Gauge(
    "driftline_dependency_up", "1 when a readiness condition holds, 0 otherwise", ["dependency"]
)
CONSUMER_LAG = Gauge(
    "driftline_consumer_lag_records",
    "End offset minus committed offset of a stage's input partition",
    ["group", "topic", "partition"],
)
CONSUMER_OLDEST_AGE = Gauge(
    "driftline_consumer_oldest_unprocessed_age_seconds",
    "Age of the oldest record dispatched and not yet finished",
    ["group", "topic", "partition"],
)
POOL_WORKERS = Gauge("driftline_simulation_pool_workers", "Simulation processes", ["state"])
WEBHOOK_ATTEMPTS = Counter(
    "driftline_webhook_attempts_total", "Webhook delivery attempts by outcome", ["outcome"]
)
HOUSEKEEPING_PRUNED = Counter(
    "driftline_housekeeping_pruned_rows_total", "Rows deleted past their retention", ["table"]
)
OLDEST_ROW_AGE = Gauge(
    "driftline_oldest_row_age_seconds", "Age of the oldest prunable row", ["table"]
)
