"""Topic retention by kind, applied to existing topics and checked against the settings.

`driftline topics create` makes missing topics with the right `retention.ms` (see
`runtime.kafka.create_topics`) and sets it on existing ones; `driftline topics check`
reports any topic whose retention differs from the policy, and exits non-zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from driftline.contracts.topics import all_topics
from driftline.retention import RetentionPolicy
from driftline.runtime.kafka import admin_client, bounded, retention_ms
from driftline.settings import Settings

RETENTION = "retention.ms"


@dataclass(frozen=True)
class TopicRetention:
    topic: str
    wanted_ms: int
    actual_ms: int | None  # None: the topic does not exist

    @property
    def ok(self) -> bool:
        return self.actual_ms == self.wanted_ms


def wanted_retention(settings: Settings) -> dict[str, int]:
    policy = RetentionPolicy.from_settings(settings)
    return {t: retention_ms(policy.for_topic(t)) for t in all_topics(settings.topic_prefix)}


async def check_topics(settings: Settings) -> list[TopicRetention]:
    """Each Driftline topic's retention, as wanted and as configured."""
    wanted = wanted_retention(settings)
    async with admin_client(settings) as admin:
        existing = set(await bounded(admin.list_topics(), _timeout(settings), "list topics"))
        names = [t for t in wanted if t in existing]
        actual = await _retention_of(admin, names, settings) if names else {}
    return [TopicRetention(t, ms, actual.get(t)) for t, ms in wanted.items()]


async def apply_retention(settings: Settings) -> list[str]:
    """Set the policy's retention on every existing topic that differs; returns those."""
    drifted = [r for r in await check_topics(settings) if r.actual_ms is not None and not r.ok]
    if drifted:
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, r.topic, {RETENTION: str(r.wanted_ms)})
            for r in drifted
        ]
        async with admin_client(settings) as admin:
            await bounded(admin.alter_configs(resources), _timeout(settings), "alter configs")
    return [r.topic for r in drifted]


async def _retention_of(
    admin: AIOKafkaAdminClient, topics: list[str], settings: Settings
) -> dict[str, int]:
    resources = [ConfigResource(ConfigResourceType.TOPIC, t, {RETENTION: None}) for t in topics]
    responses = await bounded(
        admin.describe_configs(resources), _timeout(settings), "describe configs"
    )
    found: dict[str, int] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            for entry in resource["config_entries"]:
                if entry["config_names"] == RETENTION and entry["config_value"] is not None:
                    found[resource["resource_name"]] = int(entry["config_value"])
    return found


def _timeout(settings: Settings) -> float:
    return settings.kafka_request_timeout_s
