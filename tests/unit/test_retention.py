"""The retention policy: bounds by kind, and the refusal of settings a replay could break."""

from __future__ import annotations

from datetime import timedelta

import pytest

from driftline.bootstrap import run_workers
from driftline.errors import ConfigurationError
from driftline.retention import RetentionPolicy
from driftline.settings import Settings
from driftline.storage.lifecycle import lifecycle_rules

DAY = 86400


def test_defaults_are_consistent_and_by_kind() -> None:
    policy = RetentionPolicy.from_settings(Settings())
    policy.check()
    assert policy.for_topic("driftline.missions.validated") == timedelta(days=3)
    assert policy.for_topic("driftline.missions.status") == timedelta(days=14)
    assert policy.for_topic("driftline.missions.validated.dlq") == timedelta(days=30)
    assert policy.processed_events >= policy.dead_letter_topics


@pytest.mark.parametrize(
    "unsafe",
    [
        {"retention_processed_events_s": 10 * DAY},  # DLQ keeps 30 days
        {"retention_topic_internal_s": 40 * DAY},  # input topics outlive the ids
    ],
)
def test_settings_that_let_a_replay_reapply_an_effect_are_refused(
    unsafe: dict[str, float],
) -> None:
    with pytest.raises(ConfigurationError, match="apply its effect twice"):
        RetentionPolicy.from_settings(Settings().model_copy(update=unsafe)).check()


async def test_a_worker_refuses_to_start_with_such_settings() -> None:
    unsafe = Settings(retention_processed_events_s=DAY, kafka_bootstrap_servers="127.0.0.1:9")
    with pytest.raises(ConfigurationError, match="DRIFTLINE_RETENTION_PROCESSED_EVENTS_S"):
        await run_workers(unsafe, ["notify"])


def test_lifecycle_rules_expire_forcing_and_optionally_artifacts() -> None:
    forcing_only = lifecycle_rules(RetentionPolicy.from_settings(Settings()))
    assert [(r["Filter"]["Prefix"], r["Expiration"]["Days"]) for r in forcing_only] == [
        ("forcing/", 30)
    ]
    both = lifecycle_rules(RetentionPolicy.from_settings(Settings(retention_artifacts_days=365)))
    assert [r["Expiration"]["Days"] for r in both] == [30, 365]
